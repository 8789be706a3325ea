//! Activation memory measured with a counting global allocator: for a stack of 4 ConvBN+ReLU
//! blocks (64 channels, 56x56, batch 8) the bytes held after forward and before backward are,
//! for Tune, at most 1.02x Deploy's and at most 0.55x Eval's. The ReLU reads its mask off its
//! output, which the next block keeps anyway, so Tune and Deploy keep one feature map per
//! block (X) and Eval two (X and the normalised conv output). With frozen parameters (input
//! gradient only) no mode keeps X (dX needs only the weight) and Tune and Deploy keep a
//! one-byte mask per activation instead of its four-byte output: at most 0.5x Eval.
//!
//! This file holds a single test so that no other test allocates concurrently.

mod common;

use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use convbn::measure::measure_step;
use convbn::memory::{self, CountingAlloc};
use convbn::{ConvBnReluStack, Mode};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn retained(mode: Mode) -> (usize, usize) {
    retained_with(mode, false)
}

/// `frozen`: parameters need no gradient and the input does (adversarial attacks).
fn retained_with(mode: Mode, frozen: bool) -> (usize, usize) {
    let device = common::device();
    let model = ConvBnReluStack::new(64, 4, mode, &device).expect("stack");
    let model = if frozen { model.no_grad() } else { model };
    let input = || {
        let x = Tensor::<4>::random([8, 64, 56, 56], Distribution::Normal(0.0, 1.0), &device);
        if frozen { x.require_grad() } else { x }
    };
    // Keep a handle on the input, as an attack does to read its gradient: without one, burn
    // may drop the graph's saved state before backward (nothing would use it).
    let step = || {
        let x = input();
        let handle = x.clone();
        let cost = measure_step(x, |x| model.forward(x)).expect("step");
        drop(handle);
        cost
    };
    // Warm up once (thread pools, lazily initialised state), then measure.
    step();
    let a = step();
    let b = step();
    assert_eq!(
        a.retained_bytes, b.retained_bytes,
        "{mode}: retained bytes are deterministic"
    );
    (a.retained_bytes, a.peak_bytes.max(b.peak_bytes))
}

#[test]
fn tune_retains_no_more_than_deploy_and_much_less_than_eval() {
    assert!(
        memory::is_counting(),
        "the counting allocator must be installed"
    );
    let (eval, eval_peak) = retained(Mode::Eval);
    let (tune, tune_peak) = retained(Mode::Tune);
    let (deploy, deploy_peak) = retained(Mode::Deploy);
    println!("retained after forward (4 ConvBN+ReLU, 64ch, 56x56, batch 8):");
    println!("  eval   {eval:>10} B   peak {eval_peak:>10} B");
    println!("  tune   {tune:>10} B   peak {tune_peak:>10} B");
    println!("  deploy {deploy:>10} B   peak {deploy_peak:>10} B");
    println!(
        "  tune/deploy = {:.4}, tune/eval = {:.4}",
        tune as f64 / deploy as f64,
        tune as f64 / eval as f64
    );
    let feature_map = 8 * 64 * 56 * 56 * 4;
    assert!(
        deploy >= 4 * feature_map,
        "deploy keeps at least each block's input"
    );
    assert!(
        tune as f64 <= 1.02 * deploy as f64,
        "tune {tune} > 1.02 x deploy {deploy}"
    );
    assert!(
        tune as f64 <= 0.55 * eval as f64,
        "tune {tune} > 0.55 x eval {eval}"
    );

    // Frozen parameters, gradient for the input only (adversarial attacks): every mode's conv
    // node needs only its weight (W' recomputed in Tune) for dX and keeps no X at all.
    let (eval_f, _) = retained_with(Mode::Eval, true);
    let (tune_f, _) = retained_with(Mode::Tune, true);
    let (deploy_f, _) = retained_with(Mode::Deploy, true);
    println!("frozen parameters, input gradient only:");
    println!("  eval {eval_f} B, tune {tune_f} B, deploy {deploy_f} B");
    assert!(
        (tune_f as f64) <= 0.5 * eval_f as f64 && (tune_f as f64) <= 1.02 * deploy_f as f64,
        "frozen: tune {tune_f}, eval {eval_f}, deploy {deploy_f}"
    );
}
