//! Which burn device the commands run on.

use burn::tensor::Device;

/// The default training device: burn's pure-Rust CPU backend with autodiff.
///
/// Builds with the `wgpu` or `cuda` feature may pass their own device to the library; the
/// commands use the CPU backend so that their measurements are comparable across machines.
pub fn training_device() -> Device {
    Device::flex().autodiff()
}
