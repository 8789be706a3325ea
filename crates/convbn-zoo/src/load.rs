//! Loading checkpoints into models: strict by default (missing keys, unexpected keys and shape
//! mismatches are all reported in one error), partial on request; and saving models back.
//!
//! Parameters are addressed by their burn path (`layer1.0.conv1.gamma`). A [`Naming`] turns
//! burn paths into checkpoint keys: [`Naming::burn`] is the identity (our own files), each
//! architecture provides the torchvision one. ConvBN blocks are recognised through
//! [`ModulePath::block_field`]: their conv fields live under the conv prefix and their BN
//! fields under the BN prefix, with PyTorch's names (`weight`/`bias`/`running_mean`/...).
//! burn's `Linear` stores `[in, out]`; PyTorch stores `[out, in]`: weights are transposed.

use std::collections::BTreeSet;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use convbn::{BlockField, ModulePath};

use crate::checkpoint::{Checkpoint, Entry, Expected};
use crate::{LoadReport, ZooError};

/// Maps a ConvBN block's burn path to its `(conv prefix, BN prefix)` in a checkpoint.
pub type BlockPrefixes = fn(&str) -> (String, String);

/// How burn parameter paths map to checkpoint keys.
#[derive(Clone, Copy, Debug)]
pub struct Naming {
    /// `(conv prefix, BN prefix)` of the ConvBN block at a burn path; `None` keeps the
    /// block's own field names (`weight`, `gamma`, `running_mean`, ...).
    pub block: Option<BlockPrefixes>,
    /// Checkpoint key prefix of any other module at a burn path (e.g. a Linear head).
    pub module: fn(&str) -> String,
    /// Whether `Linear` weights are stored `[out, in]` (PyTorch) rather than `[in, out]`.
    pub transpose_linear: bool,
}

fn identity(path: &str) -> String {
    path.to_string()
}

impl Naming {
    /// Our own files: keys are burn paths, ConvBN fields keep their names, no transposes.
    pub fn burn() -> Self {
        Naming {
            block: None,
            module: identity,
            transpose_linear: false,
        }
    }

    /// The checkpoint key of a parameter, and whether it must be transposed.
    fn key(&self, path: &ModulePath) -> (String, bool) {
        let (parent, field) = path.split_field();
        if let (Some(block_field), Some(block)) = (path.block_field(), self.block) {
            let (conv, bn) = block(&parent);
            return (
                format!(
                    "{}.{}",
                    if block_field.is_conv() { conv } else { bn },
                    torch_name(block_field)
                ),
                false,
            );
        }
        let transpose =
            self.transpose_linear && path.container() == Some("Struct:Linear") && field == "weight";
        let prefix = (self.module)(&parent);
        let key = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        (key, transpose)
    }
}

/// PyTorch's name of a block field in its `Conv`/`BatchNorm` module (BN's `gamma` is its
/// `weight`, `beta` its `bias`).
fn torch_name(field: BlockField) -> &'static str {
    match field {
        BlockField::Gamma => BlockField::Weight.name(),
        BlockField::Beta => BlockField::Bias.name(),
        other => other.name(),
    }
}

/// Options of [`load`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Keep the model's own values for missing keys and ignore unexpected ones (e.g. loading
    /// a backbone into a model with a new head). Shape mismatches are still skipped and
    /// reported, never loaded.
    pub partial: bool,
}

/// Load `checkpoint` into `model` under `naming`. Strict unless `options.partial`: then the
/// returned report lists what was skipped. On error the model is left unchanged.
pub fn load<M: Module>(
    model: &mut M,
    checkpoint: &Checkpoint,
    naming: &Naming,
    options: LoadOptions,
) -> Result<LoadReport, ZooError> {
    let mut mapper = Loader {
        naming,
        checkpoint,
        path: ModulePath::new(),
        used: BTreeSet::new(),
        report: LoadReport::default(),
    };
    let loaded = model.clone().map(&mut mapper);
    let Loader {
        used, mut report, ..
    } = mapper;
    report.unexpected = checkpoint
        .tensors
        .keys()
        .chain(checkpoint.unread.keys())
        .filter(|k| !used.contains(*k))
        .cloned()
        .collect();
    report.invalid_statistics = convbn::invalid_statistics(&loaded)
        .into_iter()
        .map(|(path, problem)| format!("{path}: {problem}"))
        .collect();
    let fatal = !report.mismatched.is_empty()
        || !report.invalid_statistics.is_empty()
        || !report.non_finite.is_empty()
        || (!options.partial && !report.is_clean());
    if fatal {
        return Err(ZooError::Mismatch(Box::new(report)));
    }
    *model = loaded;
    Ok(report)
}

/// Load the checkpoint file at `path` into `model` under `naming`: each tensor's shape is
/// checked against the model before its data is read, and the bytes read are bounded by the
/// model's own size (see [`Expected`]). Strict unless `options.partial`.
pub fn load_file<M: Module>(
    model: &mut M,
    path: impl AsRef<std::path::Path>,
    naming: &Naming,
    options: LoadOptions,
) -> Result<LoadReport, ZooError> {
    let checkpoint = Checkpoint::open_for(path, &expected(model, naming))?;
    load(model, &checkpoint, naming, options)
}

/// The checkpoint keys `model` loads under `naming`, with the shapes a file must store them
/// in (PyTorch's `[out, in]` for transposed `Linear` weights).
pub fn expected<M: Module>(model: &M, naming: &Naming) -> Expected {
    struct Shapes(Expected);
    impl KeyedVisit for Shapes {
        fn visit<const D: usize>(&mut self, key: String, transpose: bool, p: &Param<Tensor<D>>) {
            let mut shape = p.shape().to_vec();
            if transpose {
                shape.reverse();
            }
            self.0.shapes.insert(key, shape);
        }
    }
    walk_keys(model, naming, Shapes(Expected::default())).0
}

/// What a walk over a model's float parameters does with each, given its checkpoint key and
/// whether the file stores it transposed.
trait KeyedVisit {
    fn visit<const D: usize>(&mut self, key: String, transpose: bool, param: &Param<Tensor<D>>);
}

/// The one path tracker of the walks over a model's parameters by checkpoint key.
struct Keyed<'a, V> {
    naming: &'a Naming,
    path: ModulePath,
    inner: V,
}

impl<V: KeyedVisit> ModuleVisitor for Keyed<'_, V> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let (key, transpose) = self.naming.key(&self.path);
        self.inner.visit(key, transpose, param);
    }
}

/// Run `inner` over every float parameter of `model` with its key under `naming`.
fn walk_keys<M: Module, V: KeyedVisit>(model: &M, naming: &Naming, inner: V) -> V {
    let mut walk = Keyed {
        naming,
        path: ModulePath::new(),
        inner,
    };
    model.visit(&mut walk);
    walk.inner
}

/// Every float tensor of `model` as a checkpoint under `naming` (for saving).
pub fn to_checkpoint<M: Module>(model: &M, naming: &Naming) -> Checkpoint {
    walk_keys(model, naming, Collector(Checkpoint::default())).0
}

/// Save `model` as `.safetensors` with burn paths as keys.
pub fn save_safetensors<M: Module>(
    model: &M,
    path: impl AsRef<std::path::Path>,
) -> Result<(), ZooError> {
    to_checkpoint(model, &Naming::burn()).save_safetensors(path)
}

/// Load a `.safetensors` file written by [`save_safetensors`] into a model of the same
/// architecture and mode (strict).
pub fn load_safetensors<M: Module>(
    model: &mut M,
    path: impl AsRef<std::path::Path>,
) -> Result<(), ZooError> {
    load_file(model, path, &Naming::burn(), LoadOptions::default()).map(|_| ())
}

struct Loader<'a> {
    naming: &'a Naming,
    checkpoint: &'a Checkpoint,
    path: ModulePath,
    used: BTreeSet<String>,
    report: LoadReport,
}

/// `[out, in]` row-major values to `[in, out]`.
fn transposed(entry: &Entry) -> Entry {
    let (rows, cols) = (entry.shape[0], entry.shape[1]);
    let mut values = vec![0.0; entry.values.len()];
    for r in 0..rows {
        for c in 0..cols {
            values[c * rows + r] = entry.values[r * cols + c];
        }
    }
    Entry {
        shape: vec![cols, rows],
        values,
    }
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (key, transpose) = self.naming.key(&self.path);
        let burn_key = self.path.full();
        let current_shape = param.shape().to_vec();
        let Some(entry) = self.checkpoint.tensors.get(&key) else {
            match self.checkpoint.unread.get(&key) {
                Some(shape) => {
                    self.used.insert(key.clone());
                    let mut shape = shape.clone();
                    if transpose && shape.len() == 2 {
                        shape.reverse();
                    }
                    self.report
                        .mismatched
                        .push((burn_key, key, current_shape, shape));
                }
                None => self.report.missing.push((burn_key, key)),
            }
            return param;
        };
        self.used.insert(key.clone());
        let bad = entry.values.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            self.report.non_finite.push(format!(
                "{key}: {bad} of {} values are NaN or infinite",
                entry.values.len()
            ));
            return param;
        }
        let current = param.val();
        let model_shape = current.dims().to_vec();
        let fits = entry.values.len() == entry.shape.iter().product::<usize>();
        let entry = if transpose && entry.shape.len() == 2 && fits {
            transposed(entry)
        } else {
            entry.clone()
        };
        if entry.shape != model_shape || !fits {
            self.report
                .mismatched
                .push((burn_key, key, model_shape, entry.shape));
            return param;
        }
        let device = current.device();
        let require_grad = current.is_require_grad();
        let value = Tensor::<D>::from_data(TensorData::new(entry.values, entry.shape), &device)
            .set_require_grad(require_grad);
        let (id, _old, mapper) = param.consume();
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Collects every float parameter as a checkpoint entry.
struct Collector(Checkpoint);

impl KeyedVisit for Collector {
    fn visit<const D: usize>(&mut self, key: String, transpose: bool, param: &Param<Tensor<D>>) {
        let value = param.val();
        let entry = Entry {
            shape: value.dims().to_vec(),
            values: value
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default(),
        };
        let entry = if transpose { transposed(&entry) } else { entry };
        self.0.tensors.insert(key, entry);
    }
}
