//! Everything that defines a detection training run. Two runs with equal configs (and the same
//! mode) compute the same thing; `--resume` refuses a checkpoint made with another config.

use std::path::PathBuf;

use convbn_train::{OptimizerConfig, Schedule, Start};
use serde::{Deserialize, Serialize};

use crate::train::augment::Augment;
use crate::{DetectError, Result};

/// Where the annotated images come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DetectData {
    /// Seeded Fashion-MNIST scenes (10 classes): `train` scenes from Fashion-MNIST's training
    /// images, `test` scenes from its test images.
    Scenes {
        /// Training scenes.
        train: usize,
        /// Test scenes.
        test: usize,
    },
    /// DeepForest's aerial tree crowns, cut into overlapping tiles; the two YELL crops train,
    /// OSBS_029 and SOAP_061 are held out.
    Trees,
    /// COCO annotation files, their `file_name`s relative to the image folders.
    Coco {
        /// Training annotations.
        train: PathBuf,
        /// Folder of the training images.
        train_images: PathBuf,
        /// Test annotations (the same categories).
        test: PathBuf,
        /// Folder of the test images.
        test_images: PathBuf,
    },
    /// Pascal VOC: folders of `.xml` annotations whose `filename`s are relative to the folder;
    /// the classes are the object names of the training annotations, sorted.
    Voc {
        /// Training annotations.
        train: PathBuf,
        /// Test annotations.
        test: PathBuf,
    },
}

/// A detection training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectConfig {
    /// The data.
    pub data: DetectData,
    /// Leave invalid annotations out (reported) instead of stopping at the first.
    pub skip_invalid: bool,
    /// Backbone architecture: `mobilenet_v2` (the default, also for runs saved before the
    /// option existed) or a ResNet of the zoo.
    #[serde(default = "default_backbone")]
    pub backbone: String,
    /// Backbone weights: MobileNetV2's ImageNet weights, or a checkpoint file (ResNets).
    pub start: Start,
    /// Network input side: images are resized to `size` x `size`, boxes with them.
    pub size: usize,
    /// FPN and head width.
    pub channels: usize,
    /// Images per training step.
    pub batch_size: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// Use only the first `n` training images.
    pub train_limit: Option<usize>,
    /// Use only the first `n` test images.
    pub test_limit: Option<usize>,
    /// Augmentation of training images (boxes moved with them).
    pub augment: Augment,
    /// Optimizer and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of the head's initialisation, the shuffling and the augmentation.
    pub seed: u64,
    /// Images per step when evaluating.
    pub eval_batch_size: usize,
}

fn default_backbone() -> String {
    "mobilenet_v2".into()
}

impl DetectConfig {
    /// Check ranges and consistency; the message says which option to change.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DetectError::Invalid(m));
        if self.size < 32 || !self.size.is_multiple_of(32) {
            return bad(format!(
                "--size {} must be a multiple of 32 (the coarsest feature stride), at least 32",
                self.size
            ));
        }
        crate::detector::Backbone::check(self.backbone.parse()?)?;
        if self.channels == 0 {
            return bad("--channels must be at least 1".into());
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
        if let DetectData::Scenes { train, test } = self.data
            && (train == 0 || test == 0)
        {
            return bad("--scenes-train and --scenes-test must be at least 1".into());
        }
        self.optimizer.validate()?;
        Ok(self.schedule.validate()?)
    }
}
