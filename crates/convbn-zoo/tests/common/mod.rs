//! Helpers shared by the zoo's integration tests.
#![allow(dead_code)]

use burn::tensor::{Device, Tensor};

/// The CPU device with autodiff.
pub fn device() -> Device {
    Device::flex().autodiff()
}

/// The asset's cached path, fetched first when missing (`None`: skipped under
/// `CONVBN_SKIP_ASSETS=1`).
#[allow(unused_imports)] // not every test binary needs it
pub use convbn_zoo::assets::for_test as asset;

/// A tensor's values as `f32`s.
pub fn values<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

/// Index of the largest value.
pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap()
}

/// The GPU tests' device: burn's wgpu backend with autodiff on `CONVBN_TEST_GPU`'s adapter
/// (default `wgpu:cpu`, a software adapter).
#[cfg(feature = "wgpu")]
pub fn wgpu_device() -> Device {
    convbn::DeviceSpec::from_env("CONVBN_TEST_GPU", "wgpu:cpu")
        .unwrap_or_else(|e| panic!("CONVBN_TEST_GPU: {e}"))
        .training_device(burn::tensor::FloatDType::F32)
        .unwrap_or_else(|e| panic!("{e} (install Mesa's Vulkan or OpenGL driver)"))
}
