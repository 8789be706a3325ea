//! The JSON log of a run: per-iteration loss, time and memory, per-epoch test accuracy, and a
//! summary. Written next to the run's checkpoint and carried inside it, so a resumed run's log
//! is the uninterrupted run's log.

use convbn::Mode;
use serde::{Deserialize, Serialize};

use crate::FinetuneConfig;

/// One training iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    /// Global iteration, from 0.
    pub step: usize,
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean cross-entropy of the batch (`null` in JSON once it is NaN or infinite).
    #[serde(with = "nullable_float")]
    pub loss: f64,
    /// Fraction of the batch classified right (before the update).
    pub accuracy: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Wall-clock milliseconds of forward, backward and optimizer step.
    pub ms: f64,
    /// Highest heap use during the iteration beyond what was held before it (activations,
    /// gradients, optimizer temporaries), by the counting allocator; 0 when it is not installed.
    pub step_peak_bytes: usize,
    /// Highest heap use of the process during the iteration.
    pub peak_bytes: usize,
}

/// One epoch's evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean training loss over the epoch's iterations.
    pub train_loss: f64,
    /// Training accuracy over the epoch's iterations.
    pub train_accuracy: f64,
    /// Test accuracy after the epoch.
    pub test_accuracy: f64,
    /// Mean test cross-entropy after the epoch.
    pub test_loss: f64,
    /// Test images evaluated.
    pub test_images: usize,
}

/// What a finished run achieved and cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Test accuracy after the last epoch.
    pub final_test_accuracy: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Median milliseconds per iteration.
    pub median_step_ms: f64,
    /// Training images per second (batch size / median iteration time).
    pub images_per_second: f64,
    /// Largest per-iteration peak beyond the resident state.
    pub max_step_peak_bytes: usize,
    /// Largest process heap peak during an iteration.
    pub max_peak_bytes: usize,
    /// The iteration at which the loss became NaN or infinite, if it did.
    pub diverged_at: Option<usize>,
}

/// What a run's iterations cost, and whether its loss stayed finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Costs {
    /// Median milliseconds per iteration (0 without iterations).
    pub median_step_ms: f64,
    /// Largest per-iteration peak beyond the resident state.
    pub max_step_peak_bytes: usize,
    /// Largest process heap peak during an iteration.
    pub max_peak_bytes: usize,
    /// The first iteration whose loss was NaN or infinite.
    pub diverged_at: Option<usize>,
}

/// An iteration record, as [`Costs`] reads it.
pub trait Costed {
    /// `(step, loss, ms, step_peak_bytes, peak_bytes)`.
    fn cost(&self) -> (usize, f64, f64, usize, usize);
}

impl Costed for IterationRecord {
    fn cost(&self) -> (usize, f64, f64, usize, usize) {
        (
            self.step,
            self.loss,
            self.ms,
            self.step_peak_bytes,
            self.peak_bytes,
        )
    }
}

impl Costs {
    /// The costs of `iterations`.
    pub fn of<R: Costed>(iterations: &[R]) -> Self {
        let (mut ms, mut c) = (
            Vec::new(),
            Self {
                median_step_ms: 0.0,
                max_step_peak_bytes: 0,
                max_peak_bytes: 0,
                diverged_at: None,
            },
        );
        for (step, loss, t, step_peak, peak) in iterations.iter().map(Costed::cost) {
            ms.push(t);
            c.max_step_peak_bytes = c.max_step_peak_bytes.max(step_peak);
            c.max_peak_bytes = c.max_peak_bytes.max(peak);
            if !loss.is_finite() && c.diverged_at.is_none() {
                c.diverged_at = Some(step);
            }
        }
        if !ms.is_empty() {
            c.median_step_ms = convbn::measure::median(&ms);
        }
        c
    }

    /// Images per second at `batch` images per iteration (0 without iterations).
    pub fn images_per_second(&self, batch: usize) -> f64 {
        if self.median_step_ms > 0.0 {
            batch as f64 * 1e3 / self.median_step_ms
        } else {
            0.0
        }
    }
}

/// Everything recorded about one mode's run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunLog {
    /// ConvBN mode of the run.
    pub mode: Mode,
    /// The run's configuration.
    pub config: FinetuneConfig,
    /// Every iteration so far.
    pub iterations: Vec<IterationRecord>,
    /// Every finished epoch.
    pub epochs: Vec<EpochRecord>,
    /// Set when the run has finished.
    pub summary: Option<RunSummary>,
}

impl RunLog {
    /// The summary of the iterations and epochs so far.
    pub fn summarize(&self) -> RunSummary {
        let c = Costs::of(&self.iterations);
        RunSummary {
            final_test_accuracy: self.epochs.last().map_or(0.0, |e| e.test_accuracy),
            iterations: self.iterations.len(),
            median_step_ms: c.median_step_ms,
            images_per_second: c.images_per_second(self.config.batch_size),
            max_step_peak_bytes: c.max_step_peak_bytes,
            max_peak_bytes: c.max_peak_bytes,
            diverged_at: c.diverged_at,
        }
    }

    /// Mean loss and accuracy over the iterations of `epoch`.
    pub fn epoch_training(&self, epoch: usize) -> (f64, f64) {
        let its: Vec<_> = self
            .iterations
            .iter()
            .filter(|r| r.epoch == epoch)
            .collect();
        let n = its.len().max(1) as f64;
        (
            its.iter().map(|r| r.loss).sum::<f64>() / n,
            its.iter().map(|r| r.accuracy).sum::<f64>() / n,
        )
    }
}

/// Non-finite floats as JSON `null` and back as NaN (JSON has no NaN); for
/// `#[serde(with = "convbn_train::log::nullable_float")]`.
pub mod nullable_float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// A finite float as itself, anything else as `null`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    /// A float, or NaN for `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}
