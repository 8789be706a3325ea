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

/// The ONNX fixtures (`bench/onnx_fixtures.sh`: PyTorch exports of MobileNetV2 and ResNet-18,
/// their outputs, and onnx's reference outputs of the PP-OCR classifier), made once into the
/// asset cache (`None`: skipped under `CONVBN_SKIP_ASSETS=1`). The first call installs CPU
/// PyTorch from PyPI (`bench/setup_pytorch.sh`, a few minutes) when it is not there yet.
pub fn onnx_fixtures() -> Option<std::path::PathBuf> {
    let mobilenet = asset("mobilenet_v2")?;
    let ppocr = asset("ppocr_cls")?;
    let cache = convbn_zoo::assets::cache_dir();
    let dir = cache.join("onnx-fixtures");
    std::fs::create_dir_all(&cache).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache.join(".onnx-fixtures.lock"))
        .unwrap();
    lock.lock().unwrap();
    if !dir.join("manifest.json").is_file() {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/onnx_fixtures.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .arg(&mobilenet)
            .arg(&ppocr)
            .output()
            .expect("running bench/onnx_fixtures.sh");
        assert!(
            out.status.success(),
            "bench/onnx_fixtures.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(dir)
}

/// Largest absolute difference over the largest absolute reference value (of `f32`s or
/// `f64`s, computed in f64).
pub fn relative_diff<T: Into<f64> + Copy>(got: &[T], want: &[T]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want
        .iter()
        .fold(0f64, |m, v| m.max((*v).into().abs()))
        .max(1e-300);
    got.iter()
        .zip(want)
        .map(|(a, b)| ((*a).into() - (*b).into()).abs())
        .fold(0f64, f64::max)
        / scale
}
