//! The JSON log of a detection run: per-iteration losses, time and memory, the COCO numbers
//! after every epoch, and a summary. Carried inside the checkpoints, so a resumed run's log is
//! the uninterrupted run's log.

use convbn::Mode;
use convbn_train::log::{Costed, Costs};
use serde::{Deserialize, Serialize};

use crate::train::config::DetectConfig;

/// One training iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectIteration {
    /// Global iteration, from 0.
    pub step: usize,
    /// Epoch, from 0.
    pub epoch: usize,
    /// Total loss (`null` in JSON once it is NaN or infinite).
    #[serde(with = "convbn_train::log::nullable_float")]
    pub loss: f64,
    /// Focal classification loss (sum over locations / positives).
    pub classification: f64,
    /// Centerness-weighted GIoU loss over positives.
    pub regression: f64,
    /// Centerness BCE over positives.
    pub centerness: f64,
    /// Positive locations in the batch.
    pub positives: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Wall-clock milliseconds of forward, backward and optimizer step.
    pub ms: f64,
    /// Highest heap use during the iteration beyond what was held before it.
    pub step_peak_bytes: usize,
    /// Highest heap use of the process during the iteration.
    pub peak_bytes: usize,
}

impl Costed for DetectIteration {
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

/// The test set's COCO numbers after an epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectEvaluation {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean training loss over the epoch's iterations.
    pub train_loss: f64,
    /// pycocotools' 12 numbers, in its order (AP, AP50, AP75, APs, APm, APl, AR1, AR10,
    /// AR100, ARs, ARm, ARl); -1 where undefined.
    pub stats: [f64; 12],
    /// Test images evaluated.
    pub test_images: usize,
    /// Detections scored.
    pub detections: usize,
}

/// What a finished run achieved and cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectSummary {
    /// AP@[.5:.95] after the last epoch.
    pub ap: f64,
    /// AP50 after the last epoch.
    pub ap50: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Median milliseconds per iteration.
    pub median_step_ms: f64,
    /// Training images per second.
    pub images_per_second: f64,
    /// Largest per-iteration peak beyond the resident state.
    pub max_step_peak_bytes: usize,
    /// Largest process heap peak during an iteration.
    pub max_peak_bytes: usize,
    /// The iteration at which the loss became NaN or infinite, if it did.
    pub diverged_at: Option<usize>,
}

/// Everything recorded about one mode's run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectLog {
    /// ConvBN mode of the run.
    pub mode: Mode,
    /// The run's configuration.
    pub config: DetectConfig,
    /// Class names, by label.
    pub classes: Vec<String>,
    /// Every iteration so far.
    pub iterations: Vec<DetectIteration>,
    /// Every finished epoch's evaluation.
    pub evaluations: Vec<DetectEvaluation>,
    /// Set when the run has finished.
    pub summary: Option<DetectSummary>,
}

impl DetectLog {
    /// The summary of the iterations and evaluations so far.
    pub fn summarize(&self) -> DetectSummary {
        let c = Costs::of(&self.iterations);
        let last = self.evaluations.last();
        DetectSummary {
            ap: last.map_or(0.0, |e| e.stats[0]),
            ap50: last.map_or(0.0, |e| e.stats[1]),
            iterations: self.iterations.len(),
            median_step_ms: c.median_step_ms,
            images_per_second: c.images_per_second(self.config.batch_size),
            max_step_peak_bytes: c.max_step_peak_bytes,
            max_peak_bytes: c.max_peak_bytes,
            diverged_at: c.diverged_at,
        }
    }

    /// Mean loss over the iterations of `epoch`.
    pub fn epoch_loss(&self, epoch: usize) -> f64 {
        let losses: Vec<f64> = self
            .iterations
            .iter()
            .filter(|r| r.epoch == epoch)
            .map(|r| r.loss)
            .collect();
        losses.iter().sum::<f64>() / losses.len().max(1) as f64
    }
}
