//! Everything that defines a fine-tuning run. Two runs with equal configs (and the same mode)
//! compute the same thing; `--resume` refuses a checkpoint made with another config.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::optimizer::OptimizerConfig;
use crate::schedule::Schedule;

/// Where the images come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataSource {
    /// Fashion-MNIST from the project's asset cache.
    FashionMnist,
    /// An image folder (one sub-folder per class); the test set is `test` or a seeded
    /// `test_fraction` of `train`.
    Folder {
        /// Training images.
        train: PathBuf,
        /// Test images (same class folders), if separate.
        test: Option<PathBuf>,
        /// Fraction of `train` held out for testing when `test` is absent.
        test_fraction: f64,
    },
}

/// Where the starting weights come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "path", rename_all = "kebab-case")]
pub enum Start {
    /// The architecture's ImageNet weights (project asset).
    Imagenet,
    /// Random initialisation (for tests and from-scratch baselines).
    Random,
    /// A checkpoint in the reference PyTorch layout.
    File(PathBuf),
}

impl Start {
    /// The zoo's name for these weights.
    pub fn weights(&self) -> convbn_zoo::pretrained::Weights {
        use convbn_zoo::pretrained::Weights;
        match self {
            Start::Imagenet => Weights::ImageNet,
            Start::Random => Weights::Random,
            Start::File(p) => Weights::File(p.clone()),
        }
    }
}

/// A fine-tuning run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinetuneConfig {
    /// Zoo architecture name (`mobilenet_v2`, ...).
    pub model: String,
    /// Starting weights; the classifier is always replaced by a fresh one.
    pub start: Start,
    /// Dataset.
    pub data: DataSource,
    /// Input side in pixels (images are resized to `size` x `size`).
    pub size: usize,
    /// Images per training step.
    pub batch_size: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// Use only the first `n` training images.
    pub train_limit: Option<usize>,
    /// Use only the first `n` test images.
    pub test_limit: Option<usize>,
    /// Random translation and flip of training images.
    pub augment: bool,
    /// Optimizer and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of the classifier's initialisation, the shuffling and the augmentation.
    pub seed: u64,
    /// Images per step when measuring test accuracy.
    pub eval_batch_size: usize,
}

impl FinetuneConfig {
    /// Check ranges and consistency; the message says which option to change.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.size < 16 {
            return bad(format!(
                "--size {} is too small; use at least 16",
                self.size
            ));
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if self.eval_batch_size == 0 {
            return bad("--eval-batch-size must be at least 1".into());
        }
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.train_limit == Some(0) || self.test_limit == Some(0) {
            return bad("--train-limit and --test-limit must be at least 1".into());
        }
        if let DataSource::Folder { test_fraction, .. } = self.data
            && !(test_fraction > 0.0 && test_fraction < 1.0)
        {
            return bad(format!(
                "--test-fraction must be in (0, 1), got {test_fraction}"
            ));
        }
        self.optimizer.validate()?;
        self.schedule.validate()
    }
}
