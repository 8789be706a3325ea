//! What can go wrong importing or running an ONNX model.

use std::fmt::Write;

/// An operator the importer does not run, with where it occurs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The operator (`Resize`, `LSTM`, ...), with the reason when the operator is known but
    /// this use of it is not (`Conv2d with auto_pad SAME_UPPER`).
    pub op: String,
    /// The nodes using it, in graph order.
    pub nodes: Vec<String>,
}

/// Everything that can go wrong with an ONNX model, phrased so the user knows what to do.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file could not be read.
    #[error("cannot read ONNX file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },

    /// onnx-ir could not parse the file (not ONNX, truncated, inconsistent graph).
    #[error("{what} is not a usable ONNX model: {message}")]
    Parse {
        /// The file (or "the given bytes").
        what: String,
        /// onnx-ir's reason.
        message: String,
    },

    /// The graph uses operators (or forms of them) that the importer does not run: all of
    /// them, listed once.
    #[error("{}", unsupported_message(.0))]
    Unsupported(Vec<Unsupported>),

    /// The graph parses but cannot be a trainable model (a parameter of the wrong shape, a
    /// graph input that is not a float tensor, ...).
    #[error("ONNX node '{node}': {message}")]
    Invalid {
        /// The node (or graph input/output).
        node: String,
        /// What is wrong.
        message: String,
    },

    /// Running the graph failed on this input (shapes that do not fit the model).
    #[error("ONNX node '{node}' cannot run on this input: {message}")]
    Run {
        /// The node.
        node: String,
        /// What did not fit.
        message: String,
    },

    /// A ConvBN block refused its input or its construction.
    #[error("ONNX node '{node}': {source}")]
    Block {
        /// The node (`conv+bn` names).
        node: String,
        /// The block's error.
        source: convbn::ConvBnError,
    },
}

fn unsupported_message(ops: &[Unsupported]) -> String {
    let mut text = format!(
        "the ONNX model uses {} operator(s) that convbn cannot run yet:",
        ops.len()
    );
    for op in ops {
        let shown: Vec<&str> = op.nodes.iter().take(3).map(String::as_str).collect();
        let more = op.nodes.len().saturating_sub(shown.len());
        let _ = write!(
            text,
            "\n  {} ({} node{}: {}{})",
            op.op,
            op.nodes.len(),
            if op.nodes.len() == 1 { "" } else { "s" },
            shown.join(", "),
            if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            }
        );
    }
    text.push_str("\nsupported: see convbn_onnx::SUPPORTED_OPS");
    text
}

/// Result of the importer.
pub type Result<T> = std::result::Result<T, OnnxError>;
