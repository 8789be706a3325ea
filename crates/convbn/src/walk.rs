//! The outside view of ConvBN blocks: the one path tracker that every burn visitor and mapper
//! of the workspace uses, and the one scan of a model's blocks.
//!
//! burn reaches a block nested anywhere in a user's model only through
//! [`ModuleVisitor`]/[`ModuleMapper`], which see names and tensors, not the block itself. A
//! block therefore talks to this module directly, on the visiting thread: while a [`scan`]
//! runs, each block hands over what it is (mode, shapes, eps, statistics) as its fields are
//! visited; while a mode switch maps a model, the mapper leaves the requested mode for the
//! block being mapped, which applies it (folding on Deploy) once its fields are mapped. Both
//! channels are private to the core, typed, and empty outside those two walks.

use std::cell::{Cell, RefCell};

use burn::module::{Module, ModuleVisitor};
use burn::tensor::Tensor;

use crate::validate::statistics_problem;
use crate::{BlockField, Mode};

/// The container type under which burn visits the fields of every [`ConvBn`](crate::ConvBn).
pub(crate) const CONTAINER: &str = "Struct:ConvBn";

/// Where a burn visitor or mapper is in a model: the chain of `(name, container type)` pairs
/// announced by `enter_module`/`exit_module`.
///
/// Two spellings of the position: [`full`](Self::full) is burn's own (every name, enum
/// variants included: record keys, optimizer ids); [`dotted`](Self::dotted) leaves enum
/// variant names out, as block paths and checkpoint keys do (`backbone.layers.3.conv`).
#[derive(Clone, Debug, Default)]
pub struct ModulePath {
    segments: Vec<(String, String)>,
}

impl ModulePath {
    /// The root of a model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Step into the module `name` of `container_type` (call from `enter_module`).
    pub fn enter(&mut self, name: &str, container_type: &str) {
        self.segments
            .push((name.to_string(), container_type.to_string()));
    }

    /// Step out of the innermost module (call from `exit_module`).
    pub fn exit(&mut self) {
        self.segments.pop();
    }

    /// burn's path: every name, enum variants included, joined by dots.
    pub fn full(&self) -> String {
        let names: Vec<&str> = self.segments.iter().map(|(n, _)| n.as_str()).collect();
        names.join(".")
    }

    /// The names of the path without enum variants (which burn announces as modules).
    pub fn names(&self) -> Vec<&str> {
        self.segments
            .iter()
            .filter(|(_, container)| !container.starts_with("Enum:"))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// The user-facing path: [`names`](Self::names) joined by dots.
    pub fn dotted(&self) -> String {
        self.names().join(".")
    }

    /// The innermost name (the field being visited) and the dotted path of the module that
    /// holds it.
    pub fn split_field(&self) -> (String, &str) {
        let names = self.names();
        match names.split_last() {
            Some((field, parent)) => (parent.join("."), field),
            None => (String::new(), ""),
        }
    }

    /// The container type of the innermost module (`"Struct:Linear"`), if any.
    pub fn container(&self) -> Option<&str> {
        self.segments.last().map(|(_, c)| c.as_str())
    }

    /// The field of a [`ConvBn`](crate::ConvBn) block being visited, if the innermost module
    /// is one of a block's fields.
    pub fn block_field(&self) -> Option<BlockField> {
        match self.segments.last() {
            Some((name, container)) if container == CONTAINER => BlockField::from_name(name),
            _ => None,
        }
    }

    /// The dotted path of the block whose field is being visited, if any.
    pub fn block(&self) -> Option<String> {
        self.block_field().map(|_| self.split_field().0)
    }
}

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

/// Everything one scan sees of a block: its [`BlockInfo`] and the tensors that model-wide
/// tools read (`gamma`, the running statistics).
#[derive(Clone, Debug)]
pub(crate) struct BlockView {
    pub info: BlockInfo,
    pub gamma: Option<Tensor<1>>,
    pub running_mean: Tensor<1>,
    pub running_var: Tensor<1>,
}

impl BlockView {
    /// What makes the running statistics unusable, if anything (reads them to the host).
    pub fn statistics_problem(&self) -> Option<String> {
        statistics_problem(&self.running_mean, &self.running_var)
    }
}

thread_local! {
    /// Whether a [`scan`] is visiting a model on this thread.
    static SCANNING: Cell<bool> = const { Cell::new(false) };
    /// The view of the block whose fields are being visited during a scan.
    static ANNOUNCED: RefCell<Option<BlockView>> = const { RefCell::new(None) };
    /// The mode a mode switch asks of the block being mapped.
    static REQUESTED: Cell<Option<Mode>> = const { Cell::new(None) };
}

/// Called by a block's `visit` before its fields: hand over its view when a scan is running.
pub(crate) fn announce(view: impl FnOnce() -> BlockView) {
    if SCANNING.get() {
        ANNOUNCED.set(Some(view()));
    }
}

/// Called by a block's `visit` after its fields.
pub(crate) fn withdraw() {
    if SCANNING.get() {
        ANNOUNCED.set(None);
    }
}

/// Ask the block whose fields are being mapped to switch to `mode` (a mode-switch mapper).
pub(crate) fn request(mode: Mode) {
    REQUESTED.set(Some(mode));
}

/// Called by a block's `map` before and after its fields: the mode requested for it, if any.
pub(crate) fn take_request() -> Option<Mode> {
    REQUESTED.take()
}

/// Every ConvBN block of `model`, in visiting order.
pub(crate) fn scan<M: Module>(model: &M) -> Vec<BlockView> {
    struct Scanner {
        path: ModulePath,
        blocks: Vec<BlockView>,
    }
    impl ModuleVisitor for Scanner {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.enter(name, container_type);
            if let Some(mut view) = self
                .path
                .block()
                .and_then(|_| ANNOUNCED.with_borrow_mut(Option::take))
            {
                view.info.path = self.path.split_field().0;
                self.blocks.push(view);
            }
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.exit();
        }
    }
    /// Ends the scan even if a visit panics.
    struct Scanning(bool);
    impl Drop for Scanning {
        fn drop(&mut self) {
            SCANNING.set(self.0);
            ANNOUNCED.set(None);
        }
    }
    let _scanning = Scanning(SCANNING.replace(true));
    let mut scanner = Scanner {
        path: ModulePath::new(),
        blocks: Vec::new(),
    };
    model.visit(&mut scanner);
    scanner.blocks
}

/// List the ConvBN blocks of `model` with their paths, modes and shapes, in visiting order.
pub fn blocks<M: Module>(model: &M) -> Vec<BlockInfo> {
    scan(model).into_iter().map(|b| b.info).collect()
}

/// The blocks of `model` whose running statistics are unusable (a non-finite mean or
/// variance, or a negative variance), as `(path, problem)`; folded blocks keep theirs and are
/// checked too.
pub fn invalid_statistics<M: Module>(model: &M) -> Vec<(String, String)> {
    scan(model)
        .into_iter()
        .filter_map(|b| b.statistics_problem().map(|p| (b.info.path, p)))
        .collect()
}
