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
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::metric::{Adaptor, LossInput, LossMetric};
use burn::train::{
    ExecutionStrategy, InferenceStep, Learner, LearnerModel, MultiDeviceOptim, SupervisedTraining,
    TrainLoader, TrainStep, ValidLoader,
};
use convbn::{Mode, set_mode};
use convbn_zoo::Model;
use convbn_zoo::ModelSpec;

mod batcher;
mod order;
mod progress;
mod schedule;

pub use batcher::ClassificationBatcher;
pub use order::{RunOrder, Sample};
pub use progress::StderrProgress;
pub use schedule::ScheduleLr;

use crate::TrainError;
use crate::config::FinetuneConfig;
use crate::data::ImageSet;
use crate::data::augment::Transform;
use crate::lockstep::Task;
use crate::trainer::Classification;
use crate::trainer::{correct, initial_model, load_data};

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
    parallelism: Parallelism,
    out_dir: &Path,
    fetch: bool,
) -> Result<LearnerOutcome, TrainError> {
    config.validate()?;
    let main = main_device(devices, config.batch_size)?;
    let k = devices.len();
    let per_worker = config.batch_size / k;
    let spec: ModelSpec = config.model.parse()?;
    let data = load_data(config, fetch)?;
    check_one_batch(data.train.len(), config.batch_size)?;
    let (mean, std) = spec.normalization();
    let transform = Transform {
        size: config.size,
        mean,
        std,
    };
    let classes = data.train.classes.len();
    let mut model = initial_model(&spec, config, classes, fetch, main)?;
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
        Classification::ORDER_SALT,
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

    let schedule = ScheduleLr::for_run(
        &config.schedule,
        config.optimizer.lr,
        config.epochs,
        train_set.len(),
        config.batch_size,
    );
    let steps = schedule.total();
    let started = Instant::now();
    let model = launch(
        model,
        train_loader,
        valid_loader,
        devices,
        parallelism,
        config.optimizer.init(),
        schedule,
        out_dir,
    )?;
    let train_seconds = started.elapsed().as_secs_f64();
    let test_accuracy = accuracy(&model, &test_set, transform, config.eval_batch_size, main);
    Ok(LearnerOutcome {
        model,
        test_accuracy,
        train_seconds,
        steps,
    })
}

/// How several devices share a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Parallelism {
    /// burn's multi-device strategy, on any backend: the workers' gradients are summed on the
    /// first device, which takes the optimizer step.
    #[default]
    Multi,
    /// burn's distributed data parallel: every device keeps its own copy and optimizer, the
    /// gradients are all-reduced (summed, NCCL). CUDA only in burn 0.22 (it panics on other
    /// backends); the command-line tool refuses it for other devices.
    Ddp,
}

/// Train `model` with burn's `SupervisedTraining` for one pass over `train` (a [`RunOrder`]
/// holds all epochs), on one device (burn's single-device strategy) or several (see
/// [`Parallelism`]), then validate once on `valid`. burn writes its logs under
/// [`learner_dir`].
#[allow(clippy::too_many_arguments)]
pub fn launch<M>(
    model: M,
    train: TrainLoader<M>,
    valid: ValidLoader<M>,
    devices: &[Device],
    parallelism: Parallelism,
    optimizer: ModuleOptimizer,
    schedule: ScheduleLr,
    out_dir: &Path,
) -> Result<M, TrainError>
where
    M: LearnerModel,
    <M as TrainStep>::Output: Adaptor<LossInput>,
    <M as InferenceStep>::Output: Adaptor<LossInput>,
{
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Config(NO_DEVICE.into()))?;
    let strategy = match parallelism {
        Parallelism::Ddp => ExecutionStrategy::ddp(
            devices.to_vec(),
            DistributedConfig {
                all_reduce_op: ReduceOperation::Sum,
            },
        ),
        Parallelism::Multi if devices.len() == 1 => ExecutionStrategy::single(main.clone()),
        Parallelism::Multi => {
            ExecutionStrategy::multi(devices.to_vec(), MultiDeviceOptim::OptimMainDevice)
        }
    };
    let result = SupervisedTraining::new(learner_dir(out_dir), train, valid)
        .renderer(Box::new(StderrProgress::default()))
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .num_epochs(1)
        .with_training_strategy(strategy.into())
        .launch(Learner::new(model, optimizer, schedule));
    match result.error {
        Some(error) => Err(TrainError::Data(format!("burn's learner stopped: {error}"))),
        None => Ok(result.model),
    }
}

const NO_DEVICE: &str = "no device to train on";

/// The first of `devices` (where burn's learner gathers the gradients and validates), after
/// checking that global batches of `batch` images split evenly over them.
pub fn main_device(devices: &[Device], batch: usize) -> Result<&Device, TrainError> {
    let main = devices
        .first()
        .ok_or_else(|| TrainError::Config(NO_DEVICE.into()))?;
    let k = devices.len();
    if !batch.is_multiple_of(k) {
        return Err(TrainError::Config(format!(
            "--batch-size {batch} is split over {k} devices: it must be a multiple of {k}"
        )));
    }
    Ok(main)
}

/// Check that `len` training images make at least one global batch of `batch`.
pub fn check_one_batch(len: usize, batch: usize) -> Result<(), TrainError> {
    if len < batch {
        return Err(TrainError::Data(format!(
            "{len} training images are fewer than one batch of {batch}"
        )));
    }
    Ok(())
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
    let samples = RunOrder::plain(set.len()).samples().to_vec();
    for chunk in samples.chunks(batch_size.max(1)) {
        let batch = batcher.batch(chunk.to_vec(), &device.clone().inner());
        let out = model.classification_output(&batch);
        right += correct(out.output, out.targets);
    }
    right as f64 / set.len().max(1) as f64
}
