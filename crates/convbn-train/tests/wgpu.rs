//! Fine-tuning on burn's wgpu backend (a software adapter by default, see
//! `common::wgpu_device`): pretrained MobileNetV2 on Fashion-MNIST in Eval and Tune, lock-step,
//! with equal losses and per-iteration device memory read from cubecl's pool; and burn's
//! Learner with two workers on the device taking the update of one global batch. Built with
//! `--features wgpu` (the README's test command enables it).
#![cfg(feature = "wgpu")]

mod common;

use convbn::Mode;
use convbn_train::observer::Silent;
use convbn_train::{
    DataSource, Finetune, FinetuneConfig, OptimizerConfig, OptimizerKind, Schedule, Start,
};

/// Both tests seed the wgpu device (model initialisation): one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn eval_and_tune_fine_tune_alike_on_wgpu() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        common::have_assets(),
        "Fashion-MNIST and MobileNetV2 assets"
    );
    let config = FinetuneConfig {
        model: "mobilenet_v2".into(),
        start: Start::Imagenet,
        data: DataSource::FashionMnist,
        size: 32,
        batch_size: 16,
        epochs: 1,
        train_limit: Some(160),
        test_limit: Some(200),
        augment: true,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 1e-4,
            momentum: 0.9,
            weight_decay: 1e-4,
        },
        schedule: Schedule::Cosine { warmup: 0 },
        seed: 1,
        eval_batch_size: 100,
    };
    let out = common::temp_dir("wgpu-eval-vs-tune");
    let logs = Finetune::new(
        config,
        &[Mode::Eval, Mode::Tune],
        common::options(&out),
        &common::wgpu_device(),
    )
    .unwrap()
    .run(&mut Silent)
    .unwrap();
    let (eval, tune) = (&logs[0], &logs[1]);
    assert_eq!(eval.iterations.len(), 10);
    // The CPU test (eval_vs_tune.rs) bounds the first 20 iterations at 1e-3 relative.
    for (a, b) in eval.iterations.iter().zip(&tune.iterations) {
        let rel = (a.loss - b.loss).abs() / a.loss.abs();
        println!(
            "iteration {}: eval {:.6} tune {:.6} ({rel:.1e})",
            a.step, a.loss, b.loss
        );
        assert!(rel <= 1e-3, "iteration {}: {rel:.2e} relative", a.step);
    }
    let (em, tm) = (
        eval.summarize().max_step_peak_bytes,
        tune.summarize().max_step_peak_bytes,
    );
    println!(
        "per-iteration device memory (highest reading): eval {em} B, tune {tm} B ({:.3}x)",
        tm as f64 / em as f64
    );
    assert!(
        tm > 0 && (tm as f64) < 0.7 * em as f64,
        "tune {tm} vs eval {em}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn two_learner_workers_on_wgpu_take_one_global_batchs_update() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = common::temp_dir("wgpu-learner");
    let device = common::wgpu_device();
    let two = [device.clone(), device.clone()];
    let (moved, gap) = common::update_gap(&root, Mode::Tune, std::slice::from_ref(&device), &two);
    println!("wgpu: |two workers' update - one's| / |one's| = {gap:.2e}");
    assert!(moved > 1e-6, "the step moved the parameters ({moved})");
    assert!(
        gap < 1e-4,
        "two workers' update differs by {gap} (relative)"
    );
    let _ = std::fs::remove_dir_all(&root);
}
