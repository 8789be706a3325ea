//! Image-classification batches for burn's data loaders.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Device, Int, Tensor, TensorData};
use convbn_zoo::learner::ClassificationBatch;

use super::order::Sample;
use crate::data::ImageSet;
use crate::data::augment::{Jitter, Transform};

/// Renders [`Sample`]s of an [`ImageSet`] into a [`ClassificationBatch`] with the run's
/// [`Transform`] (Pillow's resampling, normalisation) and, for training, the run's
/// augmentation.
pub struct ClassificationBatcher {
    set: Arc<ImageSet>,
    transform: Transform,
    /// Seed of the augmentation, or `None` for none.
    augment: Option<u64>,
    share: f64,
}

impl ClassificationBatcher {
    /// A batcher over `set`; `augment` is the run's seed to augment with ([`Jitter::at`]),
    /// `share` each batch's weight in its step's loss (`1/k` with `k` data-parallel workers).
    pub fn new(set: Arc<ImageSet>, transform: Transform, augment: Option<u64>, share: f64) -> Self {
        Self {
            set,
            transform,
            augment,
            share,
        }
    }
}

impl Batcher<Sample, ClassificationBatch> for ClassificationBatcher {
    fn batch(&self, items: Vec<Sample>, device: &Device) -> ClassificationBatch {
        let jitter: Vec<Jitter> = match self.augment {
            Some(seed) => items
                .iter()
                .map(|s| Jitter::at(seed, s.epoch, s.position, self.set.height, self.set.width))
                .collect(),
            None => Vec::new(),
        };
        let indices: Vec<usize> = items.iter().map(|s| s.index).collect();
        let images = self.transform.batch(&self.set, &indices, &jitter, device);
        let labels: Vec<i64> = indices.iter().map(|&i| self.set.labels[i] as i64).collect();
        let targets: Tensor<1, Int> =
            Tensor::from_data(TensorData::new(labels, [indices.len()]), device);
        ClassificationBatch {
            images,
            targets,
            share: self.share,
        }
    }
}
