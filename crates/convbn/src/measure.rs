//! Memory and time of one training step (forward, loss, backward), measured with the counting
//! allocator of [`crate::memory`] on the CPU and with the device's memory pool on GPUs.

use std::cell::Cell;
use std::time::Instant;

use burn::tensor::{Device, Tensor};

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

/// The memory/time bracket around one step: the memory held and the clock at its start, with
/// the peak reset. Every step measurement of the workspace (benchmarks, both training loops,
/// attacks) reads its figures through one.
///
/// On the CPU, memory is the heap, counted by [`memory::CountingAlloc`] (figures are 0 unless
/// it is the global allocator). On a device with its own memory pool (wgpu, CUDA: cubecl's
/// allocator) it is the pool's bytes in use, read after a sync; the pool keeps no peak, so
/// there the peak is the highest of the readings taken ([`Meter::held_bytes`] calls and the
/// end of the step).
#[derive(Clone, Debug)]
pub struct Meter {
    base: usize,
    start: Instant,
    pool: Option<Device>,
    highest_reading: Cell<usize>,
}

impl Meter {
    /// Start measuring the heap: note what is held now, reset the peak, start the clock.
    pub fn start() -> Self {
        let base = memory::allocated();
        memory::reset_peak();
        Self {
            base,
            start: Instant::now(),
            pool: None,
            highest_reading: Cell::new(0),
        }
    }

    /// Start measuring the memory of `device`: its pool's bytes in use when it has a pool
    /// (GPU backends), the heap otherwise.
    pub fn start_on(device: &Device) -> Self {
        match pool_in_use(device) {
            Some(base) => Self {
                base,
                start: Instant::now(),
                pool: Some(device.clone()),
                highest_reading: Cell::new(base),
            },
            None => Self::start(),
        }
    }

    fn now(&self) -> usize {
        match &self.pool {
            Some(device) => {
                let now = pool_in_use(device).unwrap_or(0);
                self.highest_reading
                    .set(self.highest_reading.get().max(now));
                now
            }
            None => memory::allocated(),
        }
    }

    /// Memory held now beyond what was held at the start.
    pub fn held_bytes(&self) -> usize {
        self.now().saturating_sub(self.base)
    }

    /// Highest memory use since the start, beyond what was held at the start.
    pub fn peak_bytes(&self) -> usize {
        self.process_peak_bytes().saturating_sub(self.base)
    }

    /// Highest memory use of the process (or the device) since the start.
    pub fn process_peak_bytes(&self) -> usize {
        match &self.pool {
            Some(_) => {
                self.now();
                self.highest_reading.get()
            }
            None => memory::peak(),
        }
    }

    /// Wall-clock milliseconds since the start.
    pub fn elapsed_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1e3
    }
}

/// Bytes in use in `device`'s memory pool after its queued work has run, or `None` for a
/// device without one (the CPU backend).
pub fn pool_in_use(device: &Device) -> Option<usize> {
    device.memory_pool_usage()?;
    // Queued kernels may still allocate: wait for them before reading.
    let _ = device.sync();
    device.memory_pool_usage().map(|u| u.bytes_in_use as usize)
}

/// Run `forward` on `input`, sum the output as the loss, run backward, and report the cost.
///
/// Memory figures are only meaningful when [`memory::CountingAlloc`] is the global allocator.
pub fn measure_step<const D: usize, const O: usize, E>(
    input: Tensor<D>,
    forward: impl FnOnce(Tensor<D>) -> Result<Tensor<O>, E>,
) -> Result<StepCost, E> {
    let meter = Meter::start_on(&input.device());
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
