//! Switch every [`ConvBn`](crate::ConvBn) block of any burn [`Module`] to a [`Mode`] in one
//! line, or only those under named sub-modules, and list a model's blocks.
//!
//! Blocks are found through burn's [`ModuleVisitor`]/[`ModuleMapper`], so they may be nested
//! in structs, enums, `Vec`s, arrays and `Option`s of any user module. A block's path is the
//! dotted chain of field names and indices leading to it, e.g. `backbone.layers.3.conv`.

use burn::module::{Flag, Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::module_impl::{CONTAINER, EPS_CONTAINER};
use crate::validate::statistics_problem;
use crate::{ConvBnError, Mode, Result};

/// What [`blocks`] reports for each ConvBN block of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockInfo {
    /// Dotted path of the block in the model.
    pub path: String,
    /// The block's current mode.
    pub mode: Mode,
    /// Conv weight shape `[C_out, C_in/groups, k...]`.
    pub weight_shape: Vec<usize>,
    /// Whether the conv has a bias (always true once folded: it holds `b'`).
    pub conv_bias: bool,
    /// Whether BN has `gamma`/`beta` (false once folded).
    pub affine: bool,
    /// Number of trainable scalars in the block.
    pub num_params: usize,
    /// BN's epsilon.
    pub eps: f64,
}

/// Switch every ConvBN block in `model` to `mode`, in place.
///
/// Fails, leaving the model exactly as it was, when a folded (Deploy) block is asked for
/// another mode or when a block that would use its running statistics has unusable ones.
///
/// ```
/// use burn::tensor::Device;
/// use convbn::{ConvBn2d, ConvBnConfig, Mode, set_mode};
/// let block: ConvBn2d = ConvBnConfig::new(3, 8, [3, 3]).init(&Device::flex()).unwrap();
/// let mut layers = vec![block.clone(), block];
/// set_mode(&mut layers, Mode::Tune).unwrap();
/// assert!(layers.iter().all(|b| b.mode() == Mode::Tune));
/// ```
pub fn set_mode<M: Module>(model: &mut M, mode: Mode) -> Result<()> {
    set_mode_under::<M, &str>(model, mode, &[])
}

/// Switch the ConvBN blocks under the given sub-module paths (all blocks when `under` is
/// empty), like MMEngine's `efficient_conv_bn_eval="[backbone]"`.
///
/// A path selects a block when it equals the block's path or is a dotted prefix of it
/// (`"backbone"` selects `backbone.layer1.0` but not `backbone2.x`). Every given path must
/// select at least one block. On error the model is left exactly as it was.
pub fn set_mode_under<M: Module, S: AsRef<str>>(
    model: &mut M,
    mode: Mode,
    under: &[S],
) -> Result<()> {
    let under: Vec<&str> = under.iter().map(|s| s.as_ref().trim_matches('.')).collect();
    let scanned = scan(model, mode != Mode::Train);
    for prefix in &under {
        if !scanned.iter().any(|b| is_under(&b.info.path, prefix)) {
            let mut tops: Vec<&str> = scanned
                .iter()
                .map(|b| b.info.path.split('.').next().unwrap_or(""))
                .collect();
            tops.dedup();
            return Err(ConvBnError::NoBlocksUnder {
                prefix: prefix.to_string(),
                available: if tops.is_empty() {
                    "(the model has no ConvBn blocks)".into()
                } else {
                    tops.join(", ")
                },
            });
        }
    }
    let selected = |path: &str| under.is_empty() || under.iter().any(|p| is_under(path, p));
    for block in scanned.iter().filter(|b| selected(&b.info.path)) {
        if block.info.mode == Mode::Deploy && mode != Mode::Deploy {
            return Err(ConvBnError::FoldedBlock {
                path: block.info.path.clone(),
                requested: mode,
            });
        }
        if let (Some(what), true) = (
            &block.stats_problem,
            block.info.mode != Mode::Deploy && mode != Mode::Train,
        ) {
            return Err(ConvBnError::InvalidStatistics {
                path: block.info.path.clone(),
                what: what.clone(),
            });
        }
    }
    let mut mapper = ModeMapper {
        mode,
        selected: &selected,
        path: Vec::new(),
    };
    // Modules are rebuilt by value; the clone only copies tensor handles.
    *model = model.clone().map(&mut mapper);
    Ok(())
}

/// List the ConvBN blocks of `model` with their paths, modes and shapes, in visiting order.
pub fn blocks<M: Module>(model: &M) -> Vec<BlockInfo> {
    scan(model, false).into_iter().map(|b| b.info).collect()
}

fn is_under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'.'))
}

/// The path of the block whose field is being visited, if the innermost container is a block.
/// Enum variant names (pushed as `None`) are not part of paths.
pub(crate) fn block_path(path: &[(Option<String>, bool)]) -> Option<String> {
    match path.last() {
        Some((_, true)) => Some(
            path[..path.len() - 1]
                .iter()
                .filter_map(|(name, _)| name.as_deref())
                .collect::<Vec<_>>()
                .join("."),
        ),
        _ => None,
    }
}

/// A path segment: `None` for an enum variant, which paths leave out.
pub(crate) fn segment(name: &str, container_type: &str) -> (Option<String>, bool) {
    let name = (!container_type.starts_with("Enum:")).then(|| name.to_string());
    (name, container_type == CONTAINER)
}

struct Scanned {
    info: BlockInfo,
    stats_problem: Option<String>,
}

fn scan<M: Module>(model: &M, check_stats: bool) -> Vec<Scanned> {
    let mut visitor = Scanner {
        path: Vec::new(),
        blocks: Vec::new(),
        check_stats,
        pending: Pending::default(),
    };
    model.visit(&mut visitor);
    visitor.blocks
}

#[derive(Default)]
struct Pending {
    training: bool,
    tune: bool,
    mean: Option<Tensor<1>>,
}

struct Scanner {
    path: Vec<(Option<String>, bool)>,
    blocks: Vec<Scanned>,
    check_stats: bool,
    pending: Pending,
}

impl Scanner {
    fn current_field(&self) -> Option<&str> {
        self.path
            .last()
            .filter(|(_, b)| *b)
            .and_then(|(n, _)| n.as_deref())
    }

    fn current_block(&mut self) -> Option<&mut Scanned> {
        let path = block_path(&self.path)?;
        self.blocks.last_mut().filter(|b| b.info.path == path)
    }
}

impl ModuleVisitor for Scanner {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if container_type == EPS_CONTAINER {
            let eps = name.parse().unwrap_or(f64::NAN);
            if let Some(block) = self.blocks.last_mut() {
                block.info.eps = eps;
            }
        }
        let is_block_field = container_type == CONTAINER;
        self.path.push(segment(name, container_type));
        if is_block_field && name == "weight" {
            let path = block_path(&self.path).unwrap_or_default();
            self.pending = Pending::default();
            self.blocks.push(Scanned {
                info: BlockInfo {
                    path,
                    mode: Mode::Eval,
                    weight_shape: Vec::new(),
                    conv_bias: false,
                    affine: false,
                    num_params: 0,
                    eps: 0.0,
                },
                stats_problem: None,
            });
        }
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(field) = self.current_field().map(str::to_string) else {
            return;
        };
        let value = param.val();
        let numel = value.shape().num_elements();
        let check_stats = self.check_stats;
        let mut mean = self.pending.mean.take();
        let Some(block) = self.current_block() else {
            return;
        };
        match field.as_str() {
            "weight" => {
                block.info.weight_shape = value.dims().to_vec();
                block.info.num_params += numel;
            }
            "bias" => {
                block.info.conv_bias = true;
                block.info.num_params += numel;
            }
            "gamma" | "beta" => {
                block.info.affine = true;
                block.info.num_params += numel;
            }
            "running_mean" => mean = Some(value.reshape([numel])),
            "running_var" if check_stats => {
                if let Some(m) = mean.take() {
                    block.stats_problem = statistics_problem(&m, &value.reshape([numel]));
                }
            }
            _ => {}
        }
        self.pending.mean = mean;
    }

    fn visit_flag(&mut self, flag: &Param<Flag>) {
        let Some(field) = self.current_field().map(str::to_string) else {
            return;
        };
        let on = flag.is_enabled();
        match field.as_str() {
            "training" => self.pending.training = on,
            "tune" => self.pending.tune = on,
            "deploy" => {
                let (training, tune) = (self.pending.training, self.pending.tune);
                if let Some(block) = self.current_block() {
                    block.info.mode = if on {
                        Mode::Deploy
                    } else if training {
                        Mode::Train
                    } else if tune {
                        Mode::Tune
                    } else {
                        Mode::Eval
                    };
                }
            }
            _ => {}
        }
    }
}

struct ModeMapper<'a> {
    mode: Mode,
    selected: &'a dyn Fn(&str) -> bool,
    path: Vec<(Option<String>, bool)>,
}

impl ModuleMapper for ModeMapper<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(segment(name, container_type));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        let Some(block) = block_path(&self.path) else {
            return flag;
        };
        if !(self.selected)(&block) {
            return flag;
        }
        let value = match self.path.last().and_then(|(n, _)| n.as_deref()) {
            Some("training") => self.mode == Mode::Train,
            Some("tune") => self.mode == Mode::Tune,
            Some("deploy") => self.mode == Mode::Deploy,
            _ => return flag,
        };
        flag.with_value(value)
    }
}
