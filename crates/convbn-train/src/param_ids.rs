//! Parameter identities by path. burn's optimizers key their state (momentum, Adam moments) by
//! [`ParamId`], which a freshly built model draws at random; a resumed run gives every
//! parameter back the id it had when the checkpoint was written, so the saved optimizer state
//! lands on the right tensors.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use convbn::ModulePath;

/// Every float parameter's id, by its dotted module path.
pub fn collect<M: Module>(model: &M) -> BTreeMap<String, u64> {
    let mut v = IdCollector {
        path: ModulePath::new(),
        ids: BTreeMap::new(),
    };
    model.visit(&mut v);
    v.ids
}

/// Give every float parameter whose path is in `ids` that id. Returns the paths of `ids` that
/// matched no parameter (empty when the model has the checkpoint's structure).
pub fn restore<M: Module>(model: M, ids: &BTreeMap<String, u64>) -> (M, Vec<String>) {
    let mut m = Restore {
        path: ModulePath::new(),
        ids,
        used: Vec::new(),
    };
    let model = model.map(&mut m);
    let unused = ids
        .keys()
        .filter(|k| !m.used.contains(k))
        .cloned()
        .collect();
    (model, unused)
}

struct IdCollector {
    path: ModulePath,
    ids: BTreeMap<String, u64>,
}

impl ModuleVisitor for IdCollector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.ids.insert(self.path.full(), param.id.val());
    }
}

struct Restore<'a> {
    path: ModulePath,
    ids: &'a BTreeMap<String, u64>,
    used: Vec<String>,
}

impl ModuleMapper for Restore<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.full();
        let Some(&id) = self.ids.get(&path) else {
            return param;
        };
        self.used.push(path);
        let (_, value, mapper) = param.consume();
        Param::from_mapped_value(ParamId::from(id), value, mapper)
    }
}
