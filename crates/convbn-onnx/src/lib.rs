//! Any ONNX CNN as a trainable burn module whose Conv -> BatchNormalization pairs are
//! [`convbn::ConvBn2d`] blocks, so that one line switches the whole model to Tune mode:
//!
//! ```no_run
//! use burn::tensor::Device;
//! use convbn::{Mode, set_mode};
//! use convbn_onnx::OnnxModel;
//!
//! let device = Device::flex().autodiff();
//! let mut model = OnnxModel::from_file("model.onnx", &device)?;
//! set_mode(&mut model, Mode::Tune)?; // Eval's gradients, Deploy's memory
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The file is parsed at run time by burn's own ONNX parser, [`onnx_ir`] (with its
//! simplification off: the graph is taken as exported). A Conv becomes a ConvBN block when
//! its output is used once, by a BatchNormalization with constant parameters: PyTorch's
//! rule for Conv-BN fusion. Every other op runs as burn ops; ops the importer does not run
//! are reported together in one [`OnnxError::Unsupported`] ([`SUPPORTED_OPS`] lists what
//! runs). Weights, BN parameters and classifiers are trainable parameters; the running
//! statistics are burn running states.

#![warn(missing_docs)]

mod error;
mod import;
mod layer;
mod model;
mod program;
mod value;

pub use error::{OnnxError, Result, Unsupported};
pub use import::SUPPORTED_OPS;
pub use layer::{Conv, Layer, Norm};
pub use model::OnnxModel;
pub use value::MAX_RANK;
