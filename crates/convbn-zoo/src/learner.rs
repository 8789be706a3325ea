//! burn's `Learner` on zoo classifiers: [`Model`] implements burn-train's [`TrainStep`] and
//! [`InferenceStep`] on a [`ClassificationBatch`], so a burn user trains any zoo model, in any
//! ConvBN mode, with `SupervisedTraining` and its execution strategies (one device, several
//! devices, DDP on CUDA).
//!
//! The training loss is the mean cross-entropy of the batch times the batch's
//! [`share`](ClassificationBatch::share) of the step's global batch:
//!
//! ```text
//! L = share * (1/n) * sum_i CE(f(x_i), y_i)
//! ```
//!
//! burn's multi-device engine *adds* the workers' gradients, so with `k` workers on equal
//! batches `share = 1/k` makes the update that of the mean loss over the global batch of
//! `k * n` images (the batchers of `convbn-train` set it). The reported loss is the unscaled
//! mean.
//!
//! Frozen-statistics modes (Eval, Tune, Deploy) need no synchronised batch norm: every worker
//! normalises with the same running statistics. In Train mode each worker normalises with its
//! own batch's statistics (as PyTorch's DDP without `SyncBatchNorm`).

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};

use crate::Model;

/// Images, their labels and the batch's share of the step's global batch.
#[derive(Clone, Debug)]
pub struct ClassificationBatch {
    /// Normalised images `[n, 3, H, W]`.
    pub images: Tensor<4>,
    /// Class indices `[n]`.
    pub targets: Tensor<1, Int>,
    /// This batch's weight in the step's loss: `1/k` on each of `k` data-parallel workers,
    /// 1 on one device.
    pub share: f64,
}

impl Model {
    /// Logits, mean cross-entropy and targets of a batch, for burn's metrics.
    ///
    /// # Panics
    /// If the images do not fit the model (wrong channel count): burn's step traits return
    /// no error. Callers that take images from users check them first (the batchers do).
    pub fn classification_output(&self, batch: &ClassificationBatch) -> ClassificationOutput {
        let logits = self
            .forward(batch.images.clone())
            .unwrap_or_else(|e| panic!("a batch that does not fit the model: {e}"));
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets.clone())
    }
}

impl TrainStep for Model {
    type Input = ClassificationBatch;
    type Output = ClassificationOutput;

    /// Forward, `share`-weighted mean cross-entropy, backward.
    fn step(&self, batch: ClassificationBatch) -> TrainOutput<ClassificationOutput> {
        let output = self.classification_output(&batch);
        let grads = (output.loss.clone() * batch.share).backward();
        TrainOutput::new(self, grads, output)
    }
}

impl InferenceStep for Model {
    type Input = ClassificationBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ClassificationBatch) -> ClassificationOutput {
        self.classification_output(&batch)
    }
}
