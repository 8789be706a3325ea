//! Eval vs Tune detection training on real data in f64 (a process of its own: the CPU
//! device's float type is fixed at first use, and the counting allocator sees only this test).

mod common;

use common::{config, f64_device, largest_relative_gap, losses, options, temp_dir};
use convbn::Mode;
use convbn_detect::train::observer::Quiet;
use convbn_detect::train::{DetectConfig, DetectTrain};

/// Counts heap bytes, so the logs' memory figures are measured.
#[global_allocator]
static ALLOC: convbn::memory::CountingAlloc = convbn::memory::CountingAlloc;

/// The criterion on real data: the pretrained MobileNetV2 backbone, Fashion-MNIST scenes, the
/// default detection optimizer: 20 lock-step iterations of Eval and Tune agree far inside 1e-3,
/// and Tune's step needs less memory.
#[test]
fn pretrained_backbone_on_scenes_eval_and_tune_agree_for_20_iterations() {
    if convbn_zoo::assets::for_test("mobilenet_v2").is_none()
        || convbn_zoo::assets::for_test("fashion-mnist-train-images").is_none()
    {
        return;
    }
    let dir = temp_dir("scenes-f64");
    let config = DetectConfig {
        data: convbn_detect::train::DetectData::Scenes {
            train: 160,
            test: 8,
        },
        start: convbn_train::Start::Imagenet,
        size: 64,
        batch_size: 8,
        epochs: 1,
        schedule: convbn_train::Schedule::Cosine { warmup: 100 },
        ..config(&dir)
    };
    let modes = [Mode::Eval, Mode::Tune];
    let logs = DetectTrain::new(config, &modes, options(&dir.join("o")), &f64_device())
        .unwrap()
        .run(&mut Quiet)
        .unwrap();
    let (a, b) = (losses(&logs[0]), losses(&logs[1]));
    assert_eq!(a.len(), 20);
    let worst = largest_relative_gap(&a, &b);
    assert!(worst < 1e-6, "largest relative loss gap {worst:e}");
    let (eval, tune) = (logs[0].summarize(), logs[1].summarize());
    eprintln!(
        "largest relative loss gap {worst:.2e}; step peak Eval {} B, Tune {} B",
        eval.max_step_peak_bytes, tune.max_step_peak_bytes
    );
    assert!(
        tune.max_step_peak_bytes < eval.max_step_peak_bytes,
        "Tune {} B vs Eval {} B",
        tune.max_step_peak_bytes,
        eval.max_step_peak_bytes
    );
}
