//! Pretrained ConvBN models: architectures built from [`convbn::ConvBn`] blocks with
//! torchvision's parameter layout, PyTorch checkpoint import, and registry-fetched assets.

#![warn(missing_docs)]

pub mod assets;
pub mod checkpoint;
pub mod data;
mod error;
pub mod files;
pub mod image;
pub mod imagenet;
mod layers;
pub mod learner;
pub mod load;
pub mod models;
pub mod pretrained;
mod spec;
mod zoo;

pub use error::{LoadReport, ZooError};
pub use models::efficientnet_lite::EfficientNetLite;
pub use models::mobilenet_v2::MobileNetV2;
pub use models::regnet::RegNet;
pub use models::resnet::{ResNet, ResNetSpec};
pub use models::vgg::Vgg;
pub use spec::{ModelSpec, ONNX_PREFIX};
pub use zoo::{Architecture, Model};
