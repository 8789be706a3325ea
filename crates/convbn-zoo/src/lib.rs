//! Pretrained ConvBN models: architectures built from [`convbn::ConvBn`] blocks with
//! torchvision's parameter layout, PyTorch checkpoint import, and registry-fetched assets.

pub mod assets;
pub mod checkpoint;
mod error;
mod layers;
pub mod load;
pub mod models;

pub use error::{LoadReport, ZooError};
pub use models::mobilenet_v2::MobileNetV2;
