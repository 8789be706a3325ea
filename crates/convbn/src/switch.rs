//! Switch every [`ConvBn`](crate::ConvBn) block of any burn [`Module`] to a [`Mode`] in one
//! line, or only those under named sub-modules, and list a model's blocks.
//!
//! Blocks are found through burn's [`ModuleVisitor`]/[`ModuleMapper`], so they may be nested
//! in structs, enums, `Vec`s, arrays and `Option`s of any user module. A block's path is the
//! dotted chain of field names and indices leading to it, e.g. `backbone.layers.3.conv`.

use burn::module::{Module, ModuleMapper};

use crate::walk::{self, ModulePath};
use crate::{ConvBnError, Mode, Result};

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
    let scanned = walk::scan(model);
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
        let uses_statistics = block.info.mode != Mode::Deploy && mode != Mode::Train;
        if let Some(what) = uses_statistics
            .then(|| block.statistics_problem())
            .flatten()
        {
            return Err(ConvBnError::InvalidStatistics {
                path: block.info.path.clone(),
                what,
            });
        }
    }
    let mut mapper = ModeMapper {
        mode,
        selected: &selected,
        path: ModulePath::new(),
    };
    // Modules are rebuilt by value; the clone only copies tensor handles.
    *model = model.clone().map(&mut mapper);
    Ok(())
}

fn is_under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'.'))
}

struct ModeMapper<'a> {
    mode: Mode,
    selected: &'a dyn Fn(&str) -> bool,
    path: ModulePath,
}

impl ModuleMapper for ModeMapper<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
        if self
            .path
            .block()
            .is_some_and(|block| (self.selected)(&block))
        {
            walk::request(self.mode);
        }
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
}
