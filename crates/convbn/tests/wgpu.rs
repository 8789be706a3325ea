//! The GPU code path, run on burn's wgpu backend (by default on a software adapter, so it runs
//! on any machine: see `common::wgpu_device`): the PyTorch reference cases, Tune == Eval over a
//! subset of the property shapes (1d/2d/3d, groups, dilation, activations). The memory claim
//! on wgpu is in `wgpu_memory.rs` (its own binary: nothing else may allocate on the device).
//!
//! Built with `--features wgpu` (the README's test command enables it).
#![cfg(feature = "wgpu")]

mod common;
#[path = "suites/properties.rs"]
mod properties;
#[path = "suites/reference.rs"]
mod reference;

use common::{on_device, wgpu_device};
use proptest::prelude::*;

#[test]
fn every_reference_case_matches_pytorch_in_every_mode_on_wgpu() {
    on_device(
        wgpu_device(),
        reference::every_reference_case_matches_pytorch_in_every_mode,
    );
}

proptest! {
    // A fixed seed and fewer cases than the CPU run (a software GPU is slow).
    #![proptest_config(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20261130),
        ..ProptestConfig::default()
    })]

    #[test]
    fn tune_equals_eval_on_wgpu(s in properties::shapes()) {
        on_device(wgpu_device(), || properties::check_shape(&s))?;
    }
}

#[test]
fn zero_and_tiny_gammas_still_give_eval_gradients_on_wgpu() {
    on_device(
        wgpu_device(),
        properties::zero_and_tiny_gammas_still_give_eval_gradients,
    );
}
