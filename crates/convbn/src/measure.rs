//! Memory and time of one training step (forward, loss, backward), measured with the counting
//! allocator of [`crate::memory`].

use std::time::Instant;

use burn::tensor::Tensor;

use crate::memory;

/// What one training step cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepCost {
    /// Heap bytes held after forward (and the loss) and before backward, beyond what was held
    /// before the forward: the activations autodiff keeps for backward, plus the output.
    pub retained_bytes: usize,
    /// Highest heap use during forward and backward, beyond what was held before the forward.
    pub peak_bytes: usize,
    /// Wall-clock milliseconds of forward + backward.
    pub step_ms: f64,
}

/// The memory/time bracket around one step: the heap held and the clock at its start, with
/// the peak counter reset. Every step measurement of the workspace (benchmarks, both training
/// loops, attacks) reads its figures through one.
///
/// Memory figures are only meaningful when [`memory::CountingAlloc`] is the global allocator
/// (0 otherwise).
#[derive(Clone, Copy, Debug)]
pub struct Meter {
    base: usize,
    start: Instant,
}

impl Meter {
    /// Start measuring: note the heap held now, reset the peak, start the clock.
    pub fn start() -> Self {
        let base = memory::allocated();
        memory::reset_peak();
        Self {
            base,
            start: Instant::now(),
        }
    }

    /// Heap held now beyond what was held at the start.
    pub fn held_bytes(&self) -> usize {
        memory::allocated().saturating_sub(self.base)
    }

    /// Highest heap use since the start, beyond what was held at the start.
    pub fn peak_bytes(&self) -> usize {
        memory::peak().saturating_sub(self.base)
    }

    /// Highest heap use of the process since the start.
    pub fn process_peak_bytes(&self) -> usize {
        memory::peak()
    }

    /// Wall-clock milliseconds since the start.
    pub fn elapsed_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1e3
    }
}

/// Run `forward` on `input`, sum the output as the loss, run backward, and report the cost.
///
/// Memory figures are only meaningful when [`memory::CountingAlloc`] is the global allocator.
pub fn measure_step<const D: usize, const O: usize, E>(
    input: Tensor<D>,
    forward: impl FnOnce(Tensor<D>) -> Result<Tensor<O>, E>,
) -> Result<StepCost, E> {
    let meter = Meter::start();
    let loss = forward(input)?.sum();
    // Make sure lazy backends have executed the forward before reading the counters.
    let loss_value = loss.clone().into_scalar::<f32>();
    let retained = meter.held_bytes();
    let grads = loss.backward();
    let step_ms = meter.elapsed_ms();
    let peak = meter.peak_bytes();
    drop((grads, loss_value));
    Ok(StepCost {
        retained_bytes: retained,
        peak_bytes: peak,
        step_ms,
    })
}

/// Median of a non-empty slice of timings (upper median for even lengths).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
