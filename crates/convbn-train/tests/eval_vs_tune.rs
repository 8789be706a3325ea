//! The paper's claim on real data: fine-tuning pretrained MobileNetV2 on Fashion-MNIST in Tune
//! mode computes what Eval mode computes (same seed, same batches, lock-step), with less
//! memory. Needs the cached assets (CI fetches them).
//!
//! Eval and Tune are equal in exact arithmetic; in f32 their gradients differ by rounding,
//! which ReLU6's kinks amplify (a 1e-6 relative change of the input moves MobileNetV2's
//! gradients by ~1e-3 relative, in Eval mode alone), and SGD compounds that over iterations.
//! The divergence grows with the learning rate: over these 50 iterations the largest relative
//! loss difference measured 5.2e-4 at lr 1e-4 and 2.9e-3 at lr 2e-4 (size 32, batch 16), so
//! this test uses 1e-4; docs/results.md compares full runs at the usual learning rate.

mod common;

#[global_allocator]
static ALLOC: convbn::memory::CountingAlloc = convbn::memory::CountingAlloc;

use convbn::Mode;
use convbn_train::observer::Silent;
use convbn_train::{
    DataSource, Finetune, FinetuneConfig, OptimizerConfig, OptimizerKind, Schedule, Start,
};

#[test]
fn tune_trains_like_eval_with_less_memory() {
    if !common::have_assets() {
        return;
    }
    let config = FinetuneConfig {
        model: "mobilenet_v2".into(),
        start: Start::Imagenet,
        data: DataSource::FashionMnist,
        size: 32,
        batch_size: 16,
        epochs: 1,
        train_limit: Some(800),
        test_limit: Some(1000),
        augment: true,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 1e-4,
            momentum: 0.9,
            weight_decay: 1e-4,
        },
        schedule: Schedule::Cosine { warmup: 0 },
        seed: 1,
        eval_batch_size: 200,
    };
    let out = common::temp_dir("eval-vs-tune");
    let device = burn::tensor::Device::flex().autodiff();
    let logs = Finetune::new(
        config,
        &[Mode::Eval, Mode::Tune],
        common::options(&out),
        &device,
    )
    .unwrap()
    .run(&mut Silent)
    .unwrap();
    let (eval, tune) = (&logs[0], &logs[1]);
    assert_eq!(eval.iterations.len(), 50);
    // SGD through ReLU6 is chaotic: Eval and Tune differ by f32 rounding, and once a
    // pre-activation near a kink flips, the runs separate by small jumps. Over seeds 1-6 the
    // first 20 iterations stay within 4.8e-4 relative and all 50 within 2.9e-3, for this
    // code and for the weight-side fold before it alike (docs/results.md, section 1): the
    // 1e-3 bound holds for 20 iterations; later ones are bounded at 1e-2 (no drift).
    let mut worst = 0f64;
    for (a, b) in eval.iterations.iter().zip(&tune.iterations) {
        let rel = (a.loss - b.loss).abs() / a.loss.abs();
        worst = worst.max(rel);
        let bound = if a.step < 20 { 1e-3 } else { 1e-2 };
        assert!(
            rel <= bound,
            "iteration {}: eval loss {} vs tune {} ({rel:.2e} relative)",
            a.step,
            a.loss,
            b.loss
        );
    }
    let (ea, ta) = (
        eval.summarize().final_test_accuracy,
        tune.summarize().final_test_accuracy,
    );
    println!("worst relative loss difference {worst:.2e}; accuracy eval {ea} tune {ta}");
    // Seeds 1-4 give accuracies 0.0-0.4 points apart (1,000 test images).
    assert!((ea - ta).abs() <= 0.005, "eval {ea} vs tune {ta}");
    assert!(
        ea > 0.2,
        "fine-tuning learned something (chance is 0.1): {ea}"
    );
    let (em, tm) = (
        eval.summarize().max_step_peak_bytes,
        tune.summarize().max_step_peak_bytes,
    );
    println!(
        "per-iteration peak: eval {em} B, tune {tm} B ({:.3}x)",
        tm as f64 / em as f64
    );
    // At 32x32 the step's peak is mostly parameter gradients and optimizer temporaries,
    // which every mode has; since activations read their masks off their outputs, Eval's
    // feature maps are only twice Tune's (measured 0.873x for the whole peak).
    assert!(
        tm > 0 && (tm as f64) < 0.95 * em as f64,
        "tune {tm} vs eval {em}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
