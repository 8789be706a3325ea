//! The architectures, all built from [`convbn::ConvBn`] blocks.

pub mod efficientnet_lite;
pub mod inverted_residual;
pub mod mobilenet_v2;
pub mod regnet;
pub mod resnet;
pub mod vgg;
