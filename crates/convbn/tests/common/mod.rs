//! Helpers shared by the integration tests.
#![allow(dead_code)]

use burn::tensor::{Device, Tensor, TensorData};

use std::cell::RefCell;

thread_local! {
    static DEVICE: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// The training device of the calling test: burn's CPU backend with autodiff, unless the test
/// runs inside [`on_device`].
pub fn device() -> Device {
    DEVICE
        .with(|d| d.borrow().clone())
        .unwrap_or_else(|| Device::flex().autodiff())
}

/// Run `f` with [`device`] returning `device` on this thread (the suites shared by the CPU and
/// GPU test binaries read their device from there).
pub fn on_device<R>(device: Device, f: impl FnOnce() -> R) -> R {
    let previous = DEVICE.with(|d| d.replace(Some(device)));
    let out = f();
    DEVICE.with(|d| *d.borrow_mut() = previous);
    out
}

/// The GPU code path's test device: burn's wgpu backend, with autodiff, on the adapter named
/// by `CONVBN_TEST_GPU` (a `--device` name; default `wgpu:cpu`, a software adapter: Mesa's
/// lavapipe or llvmpipe, so the GPU code path runs on any machine).
#[cfg(feature = "wgpu")]
pub fn wgpu_device() -> Device {
    convbn::DeviceSpec::from_env("CONVBN_TEST_GPU", "wgpu:cpu")
        .unwrap_or_else(|e| panic!("CONVBN_TEST_GPU: {e}"))
        .training_device(burn::tensor::FloatDType::F32)
        .unwrap_or_else(|e| {
            panic!("{e} (install a Vulkan or OpenGL driver, e.g. Debian's mesa-vulkan-drivers)")
        })
}

/// A tensor's values as `f32`s.
pub fn values<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

/// Assert `|a - b| <= tol * max(1, |b|)` element-wise (absolute or relative, whichever is
/// looser), with a message naming the first offending element.
pub fn assert_close(what: &str, got: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(
        got.len(),
        expected.len(),
        "{what}: length {} vs {}",
        got.len(),
        expected.len()
    );
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let bound = tol * e.abs().max(1.0);
        assert!(
            (g - e).abs() <= bound && g.is_finite(),
            "{what}[{i}]: got {g}, expected {e} (|diff| {} > {bound})",
            (g - e).abs()
        );
    }
}

/// Relative L2 distance `|a - b| / max(|b|, tiny)`.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (diff / norm.max(1e-30)).sqrt()
}

/// A tensor of the given shape from `f32` values.
pub fn tensor<const D: usize>(values: Vec<f32>, shape: Vec<usize>, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}
