//! The order of a run's samples for burn's data loaders, one global batch split over workers.

use burn::data::dataset::{Dataset, DatasetError};

use crate::lockstep::epoch_order;

/// One training image to render: its index in the [`ImageSet`], and where it sits in the
/// run's data order (which fixes its augmentation, [`Jitter::at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Index in the image set.
    pub index: usize,
    /// Epoch of the run.
    pub epoch: usize,
    /// Position in the epoch's order.
    pub position: usize,
}

/// The samples of a whole run laid out for burn's data loaders, which give each of `k`
/// workers a contiguous `1/k` of a dataset and batch it in order: worker `w`'s `t`-th batch is
/// the `w`-th part of the run's `t`-th global batch. Global batches follow the lock-step
/// trainer's order ([`epoch_order`] with the task's salt, a fresh permutation every epoch), so one worker and `k`
/// workers see the same global batches, and one worker sees the lock-step trainer's. Each
/// epoch's last partial global batch is left out (every worker gets equal batches).
///
/// All epochs are one pass of burn's loader: its learner then runs one "epoch" (validation
/// once, at the end).
#[derive(Clone, Debug)]
pub struct RunOrder {
    samples: Vec<Sample>,
}

impl RunOrder {
    /// The order of `epochs` epochs over `len` images in global batches of `batch`, split
    /// over `workers` (`batch` must be a multiple of `workers`); `salt` is the task's
    /// [`Task::ORDER_SALT`].
    pub fn new(
        seed: u64,
        salt: u64,
        epochs: usize,
        len: usize,
        batch: usize,
        workers: usize,
    ) -> Self {
        let per_worker = batch / workers;
        let steps_per_epoch = len / batch;
        let mut samples = Vec::with_capacity(epochs * steps_per_epoch * batch);
        let orders: Vec<Vec<usize>> = (0..epochs)
            .map(|e| epoch_order(seed, e, salt, len))
            .collect();
        for w in 0..workers {
            for (epoch, order) in orders.iter().enumerate() {
                for t in 0..steps_per_epoch {
                    let from = t * batch + w * per_worker;
                    samples.extend((from..from + per_worker).map(|position| Sample {
                        index: order[position],
                        epoch,
                        position,
                    }));
                }
            }
        }
        Self { samples }
    }

    /// Every image of `len` once, in index order, without augmentation (evaluation).
    pub fn plain(len: usize) -> Self {
        Self {
            samples: (0..len)
                .map(|i| Sample {
                    index: i,
                    epoch: 0,
                    position: i,
                })
                .collect(),
        }
    }
}

impl RunOrder {
    /// The samples, in order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
}

impl Dataset<Sample> for RunOrder {
    fn get(&self, index: usize) -> Result<Sample, DatasetError> {
        self.samples.get(index).copied().ok_or_else(|| {
            DatasetError::new(std::io::Error::other(format!(
                "sample {index} of {}",
                self.samples.len()
            )))
        })
    }

    fn len(&self) -> usize {
        self.samples.len()
    }
}
