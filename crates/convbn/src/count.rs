//! Parameter counts as PyTorch reports them.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::ModulePath;

/// Number of trainable scalars in `model`, as `sum(p.numel() for p in m.parameters())` counts
/// them in PyTorch: every float parameter except the BN running statistics of ConvBN blocks.
pub fn trainable_parameters<M: Module>(model: &M) -> usize {
    struct Counter {
        path: ModulePath,
        count: usize,
    }
    impl ModuleVisitor for Counter {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !self
                .path
                .block_field()
                .is_some_and(|f| f.is_running_statistic())
            {
                self.count += param.val().shape().num_elements();
            }
        }
    }
    let mut counter = Counter {
        path: ModulePath::new(),
        count: 0,
    };
    model.visit(&mut counter);
    counter.count
}
