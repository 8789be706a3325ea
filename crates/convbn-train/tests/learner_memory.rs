//! Tune keeps its memory advantage under burn's Learner: the heap high-water mark of one
//! `TrainStep::step` (forward, loss, backward: what burn's learner calls per batch) of
//! MobileNetV2 (batch 8, 64x64), measured with the counting allocator. This file holds a
//! single test so that no other test allocates concurrently.

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use burn::train::TrainStep;
use convbn::measure::Meter;
use convbn::memory::{self, CountingAlloc};
use convbn::{Mode, set_mode};
use convbn_zoo::learner::ClassificationBatch;
use convbn_zoo::{Architecture, Model};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn step_peak(mode: Mode) -> usize {
    let device = Device::flex().autodiff();
    device.seed(1);
    let mut model = Model::new(Architecture::MobileNetV2, 10, &device);
    set_mode(&mut model, mode).expect("mode");
    let batch = || ClassificationBatch {
        images: Tensor::random([8, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device),
        targets: Tensor::<1, Int>::from_data(TensorData::new((0..8i64).collect(), [8]), &device),
        share: 1.0,
    };
    let mut peaks = Vec::new();
    for _ in 0..3 {
        let b = batch();
        let meter = Meter::start();
        let out = TrainStep::step(&model, b);
        peaks.push(meter.peak_bytes());
        drop(out);
    }
    // The first step warms thread pools and caches up. The CPU convolutions run their matrix
    // products on both threads at once, and the products' own small scratch allocations (the
    // `gemm` crate's) overlap as the threads happen to run: peaks of identical steps may
    // differ by a few bytes (measured: 48 of 40 MB), never by a feature map.
    let (a, b) = (peaks[1] as f64, peaks[2] as f64);
    assert!(
        (a - b).abs() <= 1e-4 * a.max(b),
        "{mode}: the peak is deterministic to 0.01 %: {peaks:?}"
    );
    peaks[2]
}

#[test]
fn tune_keeps_its_memory_advantage_under_burns_train_step() {
    assert!(memory::is_counting());
    let eval = step_peak(Mode::Eval);
    let tune = step_peak(Mode::Tune);
    let deploy = step_peak(Mode::Deploy);
    println!(
        "TrainStep::step peak heap (MobileNetV2, batch 8, 64x64): eval {eval} B, tune {tune} B, \
         deploy {deploy} B; tune/eval {:.3}, tune/deploy {:.3}",
        tune as f64 / eval as f64,
        tune as f64 / deploy as f64
    );
    assert!(
        (tune as f64) <= 0.75 * eval as f64,
        "tune {tune} vs eval {eval}"
    );
    assert!(
        (tune as f64) <= 1.05 * deploy as f64,
        "tune {tune} vs deploy {deploy}"
    );
}
