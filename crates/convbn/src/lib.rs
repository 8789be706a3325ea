#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod activation;
mod block;
mod config;
mod count;
mod error;
mod fold;
mod geometry;
pub mod measure;
pub mod memory;
mod mode;
mod module_impl;
pub mod ops;
mod scales;
mod stack;
mod switch;
mod validate;

pub use activation::Activation;
pub use block::{ConvBn, ConvBn1d, ConvBn2d, ConvBn3d};
pub use config::{ConvBnConfig, ConvBnTensors, PerDim};
pub use count::trainable_parameters;
pub use error::{ConvBnError, Result};
pub use fold::fold;
pub use geometry::ConvGeometry;
pub use mode::Mode;
pub use module_impl::{CONTAINER, EPS_CONTAINER};
pub use scales::{BlockScales, scales};
pub use stack::ConvBnReluStack;
pub use switch::{BlockInfo, blocks, set_mode, set_mode_under};
pub use validate::statistics_problem;
