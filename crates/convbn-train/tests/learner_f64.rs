//! burn's Learner in f64 (a process of its own: the CPU device's float type is fixed at first
//! use): a short run reaches the same accuracy on one worker and on two.

mod common;

use std::sync::OnceLock;

use burn::tensor::{DType, Device, FloatDType, Tensor};
use convbn::DeviceSpec;

/// The CPU device with f64 as its float type, with autodiff (configured once per process).
fn f64_device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    let device = DEVICE.get_or_init(|| {
        DeviceSpec::Cpu
            .training_device(FloatDType::F64)
            .expect("the CPU device in f64")
    });
    assert_eq!(Tensor::<1>::zeros([1], device).dtype(), DType::F64);
    device.clone()
}

/// The f32 test's run ([`common::learner_accuracy_config`]) in f64: one worker with global
/// batches of 32 and two workers with 16 images of each reach the same test accuracy (within
/// one of the 500 images; in f32 rounding grown over 40 steps flips up to 29, see
/// `learner.rs`).
#[test]
fn a_short_run_on_two_workers_reaches_one_workers_accuracy_in_f64() {
    assert!(
        common::have_assets(),
        "Fashion-MNIST and MobileNetV2 assets"
    );
    let root = common::temp_dir("learner-accuracy-f64");
    let config = common::learner_accuracy_config();
    let [one, two] = common::one_and_two_workers(&config, &root, f64_device);
    assert_eq!(one.steps, two.steps);
    assert!(
        one.test_accuracy > 0.5,
        "the run learned ({})",
        one.test_accuracy
    );
    assert!(
        (one.test_accuracy - two.test_accuracy).abs() <= 1.0 / 500.0 + 1e-12,
        "one worker {} vs two {}",
        one.test_accuracy,
        two.test_accuracy
    );
    let _ = std::fs::remove_dir_all(&root);
}
