//! Train a small FCOS detector on Fashion-MNIST scenes in Tune mode with the library API, then
//! score it: `cargo run --release -p convbn-detect --example train_detector -- [SCENES] [EPOCHS]`
//! (defaults 400 scenes, 2 epochs; fetches the assets on first use).

use convbn::Mode;
use convbn_detect::train::augment::Augment;
use convbn_detect::train::log::{DetectEvaluation, DetectIteration, DetectLog};
use convbn_detect::train::observer::Observer;
use convbn_detect::train::{DetectConfig, DetectData, DetectTrain};
use convbn_train::{OptimizerConfig, OptimizerKind, RunOptions, Schedule, Start};

/// Counts heap bytes, so the log's memory figures are filled in.
#[global_allocator]
static ALLOC: convbn::memory::CountingAlloc = convbn::memory::CountingAlloc;

/// Prints every 10th iteration and each evaluation.
struct Print;

impl Observer<DetectLog> for Print {
    fn step(&mut self, mode: Mode, r: &DetectIteration, _steps_per_epoch: usize) {
        if r.step.is_multiple_of(10) {
            println!(
                "{mode} iteration {}: loss {:.3} ({:.0} ms)",
                r.step, r.loss, r.ms
            );
        }
    }

    fn epoch(&mut self, mode: Mode, r: &DetectEvaluation) {
        println!(
            "{mode} epoch {}: AP {:.3}, AP50 {:.3}",
            r.epoch + 1,
            r.stats[0],
            r.stats[1]
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: usize| -> usize {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let config = DetectConfig {
        data: DetectData::Scenes {
            train: arg(1, 400),
            test: 100,
        },
        skip_invalid: false,
        backbone: "mobilenet_v2".into(),
        start: Start::Imagenet,
        size: 128,
        channels: 64,
        batch_size: 16,
        epochs: arg(2, 2),
        train_limit: None,
        test_limit: None,
        augment: Augment::Flip,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
        },
        schedule: Schedule::Cosine { warmup: 20 },
        seed: 0,
        eval_batch_size: 50,
    };
    let options = RunOptions {
        out_dir: std::env::temp_dir().join("convbn-example-detector"),
        checkpoint_every: 0,
        stop_after: None,
        fetch: true,
        overwrite: true,
    };
    let device = burn::tensor::Device::flex().autodiff();
    let logs = DetectTrain::new(config, &[Mode::Tune], options, &device)?.run(&mut Print)?;
    let s = logs[0].summarize();
    println!(
        "Tune: AP {:.3}, AP50 {:.3}, {:.0} ms and {:.0} MB per iteration",
        s.ap,
        s.ap50,
        s.median_step_ms,
        s.max_step_peak_bytes as f64 / 1e6
    );
    Ok(())
}
