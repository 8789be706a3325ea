//! The architectures.

pub mod mobilenet_v2;
