//! Fine-tuning through burn's own training engine: datasets and batchers for burn's data
//! loaders, the run's [`Schedule`] as a burn learning-rate scheduler, and
//! [`finetune_with_learner`], which trains a zoo model with `SupervisedTraining` on one device
//! or data-parallel on several (burn's multi-device strategy; DDP is CUDA-only in burn 0.22).
//!
//! Data parallelism over `k` devices: burn gives each worker a contiguous `1/k` of the
//! training set and *adds* the workers' gradients before one optimizer step. Each worker takes
//! `batch_size / k` images per step and weights its mean loss by `1/k`
//! ([`ClassificationBatch::share`]), so a step's update is that of the mean loss over the
//! global batch of `batch_size` images, as on one device.
//!
//! What this path does not do that [`crate::Finetune`] does: resume mid-run (burn
//! checkpoints per epoch; no checkpoint is written here), per-iteration time and memory in a
//! JSON log, lock-step comparison of modes, and charts. Use the lock-step trainer for those.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining};
use convbn::{Mode, set_mode};
use convbn_zoo::Architecture;
use convbn_zoo::Model;
use convbn_zoo::learner::ClassificationBatch;

use crate::config::FinetuneConfig;
use crate::data::ImageSet;
use crate::data::augment::{Jitter, Transform};
use crate::lockstep::{Task, epoch_order};
use crate::trainer::Classification;
use crate::trainer::{correct, initial_model, load_data};
use crate::{Schedule, TrainError};

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
/// trainer's order ([`epoch_order`], a fresh permutation every epoch), so one worker and `k`
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
    /// over `workers` (`batch` must be a multiple of `workers`).
    pub fn new(seed: u64, epochs: usize, len: usize, batch: usize, workers: usize) -> Self {
        let per_worker = batch / workers;
        let steps_per_epoch = len / batch;
        let mut samples = Vec::with_capacity(epochs * steps_per_epoch * batch);
        let orders: Vec<Vec<usize>> = (0..epochs)
            .map(|e| epoch_order(seed, e, Classification::ORDER_SALT, len))
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

impl Dataset<Sample> for RunOrder {
    fn get(&self, index: usize) -> Result<Sample, burn::data::dataset::DatasetError> {
        self.samples.get(index).copied().ok_or_else(|| {
            burn::data::dataset::DatasetError::new(std::io::Error::other(format!(
                "sample {index} of {}",
                self.samples.len()
            )))
        })
    }

    fn len(&self) -> usize {
        self.samples.len()
    }
}

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

/// A run's [`Schedule`] as burn's learning-rate scheduler: the learner calls
/// [`LrScheduler::step`] once per optimizer step and gets
/// `schedule.lr(base, step, total, step / steps_per_epoch)`.
#[derive(Clone, Debug)]
pub struct ScheduleLr {
    schedule: Schedule,
    base: f64,
    total: usize,
    steps_per_epoch: usize,
    /// Steps taken so far.
    step: usize,
}

impl ScheduleLr {
    /// `total` optimizer steps, `steps_per_epoch` of them per epoch.
    pub fn new(schedule: Schedule, base: f64, total: usize, steps_per_epoch: usize) -> Self {
        Self {
            schedule,
            base,
            total,
            steps_per_epoch: steps_per_epoch.max(1),
            step: 0,
        }
    }
}

impl LrScheduler for ScheduleLr {
    fn step(&mut self) -> LearningRate {
        let step = self.step;
        self.step += 1;
        self.schedule
            .lr(self.base, step, self.total, step / self.steps_per_epoch)
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar("step", self.step as u64)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(step) = record.scalar::<u64>("step") {
            self.step = step as usize;
        }
    }
}

/// What [`finetune_with_learner`] returns.
pub struct LearnerOutcome {
    /// The trained model (on the first device, without autodiff).
    pub model: Model,
    /// Fraction of the test set classified right after training.
    pub test_accuracy: f64,
    /// Wall-clock seconds of the training (burn's learner), without the test evaluation.
    pub train_seconds: f64,
    /// Optimizer steps taken.
    pub steps: usize,
}

/// Fine-tune `config`'s model in `mode` with burn's `SupervisedTraining` on `devices` (one:
/// burn's single-device strategy; several: its multi-device strategy, gradients summed on the
/// first device, which takes the optimizer step). burn writes its logs under `out_dir`.
///
/// `config.batch_size` is the global batch: it must be a multiple of the number of devices.
pub fn finetune_with_learner(
    config: &FinetuneConfig,
    mode: Mode,
    devices: &[Device],
    out_dir: &Path,
    fetch: bool,
) -> Result<LearnerOutcome, TrainError> {
    config.validate()?;
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Config("no device to train on".into()))?;
    let k = devices.len();
    if !config.batch_size.is_multiple_of(k) {
        return Err(TrainError::Config(format!(
            "--batch-size {} is split over {k} devices: it must be a multiple of {k}",
            config.batch_size
        )));
    }
    let per_worker = config.batch_size / k;
    let arch: Architecture = config.model.parse()?;
    let data = load_data(config, fetch)?;
    if data.train.len() < config.batch_size {
        return Err(TrainError::Data(format!(
            "{} training images are fewer than one batch of {}",
            data.train.len(),
            config.batch_size
        )));
    }
    let (mean, std) = arch.normalization();
    let transform = Transform {
        size: config.size,
        mean,
        std,
    };
    let classes = data.train.classes.len();
    let mut model = initial_model(arch, config, classes, fetch, main)?;
    set_mode(&mut model, mode)?;

    let (train_set, test_set) = (Arc::new(data.train), Arc::new(data.test));
    let augment = config.augment.then_some(config.seed);
    let train_loader = DataLoaderBuilder::new(ClassificationBatcher::new(
        train_set.clone(),
        transform,
        augment,
        1.0 / k as f64,
    ))
    .batch_size(per_worker)
    .build(RunOrder::new(
        config.seed,
        config.epochs,
        train_set.len(),
        config.batch_size,
        k,
    ));
    let valid_loader = DataLoaderBuilder::new(ClassificationBatcher::new(
        test_set.clone(),
        transform,
        None,
        1.0,
    ))
    .batch_size(config.eval_batch_size)
    .build(RunOrder::plain(test_set.len()));

    let steps_per_epoch = train_set.len() / config.batch_size;
    let steps = steps_per_epoch * config.epochs;
    let schedule = ScheduleLr::new(
        config.schedule.clone(),
        config.optimizer.lr,
        steps,
        steps_per_epoch,
    );
    let strategy = if k == 1 {
        ExecutionStrategy::single(main.clone())
    } else {
        ExecutionStrategy::multi(devices.to_vec(), MultiDeviceOptim::OptimMainDevice)
    };
    let started = Instant::now();
    let result = SupervisedTraining::new(learner_dir(out_dir), train_loader, valid_loader)
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .num_epochs(1)
        .with_training_strategy(strategy.into())
        .launch(Learner::new(model, config.optimizer.init(), schedule));
    let train_seconds = started.elapsed().as_secs_f64();
    if let Some(error) = result.error {
        return Err(TrainError::Data(format!("burn's learner stopped: {error}")));
    }
    let model = result.model;
    let test_accuracy = accuracy(&model, &test_set, transform, config.eval_batch_size, main);
    Ok(LearnerOutcome {
        model,
        test_accuracy,
        train_seconds,
        steps,
    })
}

/// Where burn's learner writes its logs under a run directory.
pub fn learner_dir(out_dir: &Path) -> PathBuf {
    out_dir.join("learner")
}

/// Fraction of `set` that `model` classifies right.
pub fn accuracy(
    model: &Model,
    set: &ImageSet,
    transform: Transform,
    batch_size: usize,
    device: &Device,
) -> f64 {
    let model = model.clone().fork(&device.clone().inner());
    let batcher = ClassificationBatcher::new(Arc::new(set.clone()), transform, None, 1.0);
    let mut right = 0i64;
    let samples = RunOrder::plain(set.len()).samples;
    for chunk in samples.chunks(batch_size.max(1)) {
        let batch = batcher.batch(chunk.to_vec(), &device.clone().inner());
        let out = model.classification_output(&batch);
        right += correct(out.output, out.targets);
    }
    right as f64 / set.len().max(1) as f64
}
