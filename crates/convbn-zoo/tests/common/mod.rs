//! Helpers shared by the zoo's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Device, Tensor};

/// The CPU device with autodiff.
pub fn device() -> Device {
    Device::flex().autodiff()
}

/// The cached asset, or `None` after printing why the test is skipped. With
/// `CONVBN_REQUIRE_ASSETS=1` (set by `.ci/run`) a missing asset fails the test instead.
pub fn asset(name: &str) -> Option<PathBuf> {
    let asset = convbn_zoo::assets::asset(name).expect("known asset");
    match asset.locate() {
        Ok(path) => Some(path),
        Err(e) if std::env::var_os("CONVBN_REQUIRE_ASSETS").is_some_and(|v| v == "1") => {
            panic!("required asset missing: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED (asset missing): {e}");
            None
        }
    }
}

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
