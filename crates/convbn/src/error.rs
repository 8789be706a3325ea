//! Errors returned by ConvBN construction, mode switches and forward passes.

use crate::Mode;

/// Everything that can go wrong with a ConvBN block, phrased so the caller knows what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvBnError {
    /// The configuration is inconsistent (zero channels, groups that do not divide the channels,
    /// non-positive `eps`, momentum outside `[0, 1]`, ...).
    #[error("invalid ConvBn configuration: {0}")]
    InvalidConfig(String),

    /// The input does not have the channel count or spatial extent the block expects.
    #[error(
        "input of shape {got:?} does not fit this ConvBn block: expected {expected}; \
         check the previous layer's output channels and the layout [batch, channels, spatial...]"
    )]
    InputShape {
        /// The shape that was given.
        got: Vec<usize>,
        /// What was expected, in words.
        expected: String,
    },

    /// Running statistics that cannot be used: NaN/infinite values or a negative variance
    /// (so `var + eps` may not be positive).
    #[error(
        "block '{path}' has unusable running statistics: {what}; \
         reload the checkpoint, or re-estimate the statistics in Train mode"
    )]
    InvalidStatistics {
        /// Where the block sits in the model.
        path: String,
        /// What is wrong, with the first offending channel.
        what: String,
    },

    /// A tensor given to build a block has the wrong shape.
    #[error("parameter '{name}' has shape {got:?}, expected {expected:?}")]
    ParamShape {
        /// The parameter's name.
        name: &'static str,
        /// The shape it has.
        got: Vec<usize>,
        /// The shape it must have.
        expected: Vec<usize>,
    },

    /// A Deploy (folded) block cannot return to another mode: the batch-norm parameters no
    /// longer exist separately.
    #[error(
        "block '{path}' is folded (Deploy mode) and cannot switch to {requested}: folding is \
         irreversible; rebuild or reload the model from its unfolded checkpoint to use {requested}"
    )]
    FoldedBlock {
        /// Where the block sits in the model.
        path: String,
        /// The mode that was asked for.
        requested: Mode,
    },

    /// `set_mode_under` was given a sub-module name under which no ConvBn block exists.
    #[error(
        "no ConvBn block under '{prefix}'; blocks live under: {available}. \
         Use a dotted module path such as 'backbone' or 'features.3'"
    )]
    NoBlocksUnder {
        /// The prefix that matched nothing.
        prefix: String,
        /// The top-level module names that do hold blocks.
        available: String,
    },

    /// The model around the blocks cannot run on this input (an imported ONNX graph whose
    /// shapes do not fit it); the message names the node.
    #[error("{0}")]
    Graph(String),

    /// A string that is not a mode name.
    #[error("unknown mode '{0}': expected one of train, eval, deploy, tune")]
    UnknownMode(String),
}

/// The message a panic caught with [`std::panic::catch_unwind`] carried (`panic!` with a
/// literal or a formatted message), for code that turns a dependency's panic into an error.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
}

/// Shorthand for results of this crate.
pub type Result<T> = core::result::Result<T, ConvBnError>;
