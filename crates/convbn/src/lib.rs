#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod activation;
mod block;
mod config;
mod count;
pub mod device;
mod error;
pub mod flops;
mod fold;
mod geometry;
#[cfg(feature = "flex")]
pub mod machine;
pub mod measure;
pub mod memory;
mod mode;
pub mod ops;
mod scales;
mod stack;
mod switch;
pub mod threads;
mod validate;
mod walk;

pub use activation::Activation;
pub use block::{BlockField, ConvBn, ConvBn1d, ConvBn2d, ConvBn3d};
pub use config::{ConvBnConfig, ConvBnTensors, PerDim};
pub use count::trainable_parameters;
pub use device::DeviceSpec;
pub use error::{ConvBnError, Result, panic_message};
pub use fold::fold;
pub use geometry::ConvGeometry;
pub use mode::Mode;
pub use scales::{BlockScales, scales};
pub use stack::ConvBnReluStack;
pub use switch::{set_mode, set_mode_under};
pub use walk::{BlockInfo, ModulePath, blocks, invalid_statistics};
