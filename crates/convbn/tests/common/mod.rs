//! Helpers shared by the integration tests.
#![allow(dead_code)]

use burn::tensor::{Device, Tensor, TensorData};

/// The training device of the tests: burn's CPU backend with autodiff.
pub fn device() -> Device {
    Device::flex().autodiff()
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
