//! The memory claim on burn's wgpu backend, measured with the device's own allocator
//! (cubecl's bytes in use after forward, before backward): for 4 ConvBN+ReLU blocks Tune keeps
//! at most 1.02x Deploy's and at most 0.7x Eval's. A single test, so that nothing else
//! allocates on the device meanwhile. Built with `--features wgpu`.
#![cfg(feature = "wgpu")]

mod common;

use burn::tensor::{Distribution, Tensor};
use common::wgpu_device;
use convbn::measure::pool_in_use;
use convbn::{ConvBnReluStack, Mode};

/// Bytes in use in the device's pool after forward (before backward), beyond those in use
/// before it, for 4 ConvBN+ReLU blocks (64 channels, 32x32, batch 8).
fn retained_on_device(mode: Mode) -> usize {
    let device = wgpu_device();
    let model = ConvBnReluStack::new(64, 4, mode, &device).expect("stack");
    let step = || {
        let x = Tensor::<4>::random([8, 64, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let before = pool_in_use(&device).expect("wgpu reports its memory pool");
        let loss = model.forward(x).expect("forward").sum();
        let after = pool_in_use(&device).expect("pool");
        let grads = loss.backward();
        drop(grads);
        after.saturating_sub(before)
    };
    step();
    let (a, b) = (step(), step());
    assert_eq!(a, b, "{mode}: bytes in use are deterministic");
    a
}

#[test]
fn tune_retains_deploys_memory_on_wgpu() {
    let eval = retained_on_device(Mode::Eval);
    let tune = retained_on_device(Mode::Tune);
    let deploy = retained_on_device(Mode::Deploy);
    println!(
        "wgpu bytes in use after forward (4 ConvBN+ReLU, 64ch, 32x32, batch 8): eval {eval}, \
         tune {tune}, deploy {deploy}; tune/deploy {:.4}, tune/eval {:.4}",
        tune as f64 / deploy as f64,
        tune as f64 / eval as f64
    );
    let feature_map = 8 * 64 * 32 * 32 * 4;
    assert!(deploy >= 4 * feature_map, "deploy keeps each block's input");
    assert!(
        tune as f64 <= 1.02 * deploy as f64,
        "tune {tune} > 1.02 x deploy {deploy}"
    );
    assert!(
        tune as f64 <= 0.7 * eval as f64,
        "tune {tune} > 0.7 x eval {eval}"
    );
}
