//! burn's `Learner` on the FCOS detector: [`Detector`] implements burn-train's [`TrainStep`]
//! and [`InferenceStep`] on a [`DetectionBatch`], and [`DetectionBatcher`] renders a
//! [`DetectionSet`] for burn's data loaders (with [`RunOrder`] for the order and split).
//!
//! The training loss is FCOS's (focal loss over the positives, GIoU, centerness BCE) of the
//! batch times its [`share`](DetectionBatch::share) of the step. FCOS normalises by the
//! positive locations of the batch; with several workers each normalises by its own, so the
//! summed update equals one global batch's only when the workers' batches hold as many
//! positives (MMDetection all-reduces the count; burn 0.22's multi-device engine has no
//! collective to do so). The backbone's statistics stay frozen in every mode the detector
//! trains in (Eval, Tune, Deploy), so no batch norm needs synchronising.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Device, Tensor};
use burn::train::metric::{Adaptor, ItemLazy, LossInput};
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use convbn_train::learner::Sample;

use crate::assign::Targets;
use crate::criterion::fcos_loss;
use crate::detector::Detector;
use crate::train::augment::Augment;
use crate::train::batch::{images, targets};
use crate::train::data::DetectionSet;

pub use convbn_train::learner::{Parallelism, RunOrder};

/// Images, their FCOS targets and the batch's share of the step's loss.
#[derive(Clone, Debug)]
pub struct DetectionBatch {
    /// Normalised images `[n, 3, S, S]`.
    pub images: Tensor<4>,
    /// Image `i`'s FCOS targets on the detector's levels.
    pub targets: Vec<Targets>,
    /// This batch's weight in the step's loss (`1/k` on each of `k` workers).
    pub share: f64,
}

/// FCOS's loss and its parts for one batch, for burn's metrics ([`LossInput`] reads `loss`).
pub struct DetectionOutput {
    /// The total loss (unweighted by the share).
    pub loss: Tensor<1>,
    /// Focal loss over the positives.
    pub classification: Tensor<1>,
    /// GIoU loss of the positives.
    pub regression: Tensor<1>,
    /// Centerness BCE.
    pub centerness: Tensor<1>,
    /// Positive locations in the batch.
    pub positives: usize,
}

impl ItemLazy for DetectionOutput {
    fn sync(self) -> Result<Self, burn_std::ExecutionError> {
        self.loss.device().flush()?;
        Ok(Self {
            loss: self.loss.without_autodiff(),
            classification: self.classification.without_autodiff(),
            regression: self.regression.without_autodiff(),
            centerness: self.centerness.without_autodiff(),
            positives: self.positives,
        })
    }
}

impl Adaptor<LossInput> for DetectionOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

impl Detector {
    /// FCOS's loss of a batch.
    ///
    /// # Panics
    /// If the images do not fit the detector (burn's step traits return no error; the
    /// batcher renders images of the set's size, which the detector is built for).
    pub fn detection_output(&self, batch: &DetectionBatch) -> DetectionOutput {
        let outputs = self
            .forward(batch.images.clone())
            .unwrap_or_else(|e| panic!("a batch that does not fit the detector: {e}"));
        let parts = fcos_loss(&outputs, &batch.targets, &batch.images.device());
        DetectionOutput {
            loss: parts.total,
            classification: parts.classification,
            regression: parts.regression,
            centerness: parts.centerness,
            positives: parts.positives,
        }
    }
}

impl TrainStep for Detector {
    type Input = DetectionBatch;
    type Output = DetectionOutput;

    /// Forward, `share`-weighted FCOS loss, backward.
    fn step(&self, batch: DetectionBatch) -> TrainOutput<DetectionOutput> {
        let output = self.detection_output(&batch);
        let grads = (output.loss.clone() * batch.share).backward();
        TrainOutput::new(self, grads, output)
    }
}

impl InferenceStep for Detector {
    type Input = DetectionBatch;
    type Output = DetectionOutput;

    fn step(&self, batch: DetectionBatch) -> DetectionOutput {
        self.detection_output(&batch)
    }
}

/// Renders [`Sample`]s of a [`DetectionSet`] into [`DetectionBatch`]es, augmented as the
/// lock-step trainer augments them ([`Augment::at`]).
pub struct DetectionBatcher {
    set: Arc<DetectionSet>,
    /// The augmentation and the run's seed, or `None` for none.
    augment: Option<(Augment, u64)>,
    share: f64,
}

impl DetectionBatcher {
    /// A batcher over `set`; `share` is each batch's weight in its step's loss.
    pub fn new(set: Arc<DetectionSet>, augment: Option<(Augment, u64)>, share: f64) -> Self {
        Self {
            set,
            augment,
            share,
        }
    }
}

impl Batcher<Sample, DetectionBatch> for DetectionBatcher {
    fn batch(&self, items: Vec<Sample>, device: &Device) -> DetectionBatch {
        let indices: Vec<usize> = items.iter().map(|s| s.index).collect();
        let augmentations: Vec<_> = match self.augment {
            Some((augment, seed)) => items
                .iter()
                .map(|s| augment.at(seed, s.epoch, s.position))
                .collect(),
            None => Vec::new(),
        };
        DetectionBatch {
            images: images(&self.set, &indices, &augmentations, device),
            targets: targets(&self.set, &indices, &augmentations),
            share: self.share,
        }
    }
}

/// What [`train_with_learner`] returns.
pub struct DetectLearnerOutcome {
    /// The trained detector (without autodiff).
    pub model: Detector,
    /// COCO's 12 numbers on the test set after training.
    pub stats: crate::coco::CocoStats,
    /// Optimizer steps taken.
    pub steps: usize,
}

/// Train `config`'s detector in `mode` with burn's `SupervisedTraining` on `devices` (see
/// [`convbn_train::learner::launch`]); `config.batch_size` is the global batch, a multiple of
/// the number of devices. On one device it computes what the lock-step trainer computes.
pub fn train_with_learner(
    config: &crate::train::DetectConfig,
    mode: convbn::Mode,
    devices: &[Device],
    parallelism: Parallelism,
    out_dir: &std::path::Path,
    fetch: bool,
) -> crate::Result<DetectLearnerOutcome> {
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::module::Module;
    use convbn_train::learner::{ScheduleLr, check_one_batch, launch, main_device};
    use convbn_train::lockstep::Task;

    use crate::DetectError;
    use crate::decode::DecodeConfig;
    use crate::train::evaluate::{predict, score};
    use crate::train::trainer::{Detection, initial_detector};

    config.validate()?;
    if mode == convbn::Mode::Train {
        return Err(DetectError::Invalid(
            "detection keeps the backbone's BN statistics frozen; use eval, tune or deploy".into(),
        ));
    }
    let main = main_device(devices, config.batch_size)?;
    let k = devices.len();
    let data = crate::train::data::load(config, fetch)?;
    check_one_batch(data.train.len(), config.batch_size)?;
    let mut model = initial_detector(config, data.train.classes.len(), fetch, main)?;
    convbn::set_mode(&mut model, mode)?;
    let (train, test) = (Arc::new(data.train), Arc::new(data.test));
    let train_loader = DataLoaderBuilder::new(DetectionBatcher::new(
        train.clone(),
        Some((config.augment, config.seed)),
        1.0 / k as f64,
    ))
    .batch_size(config.batch_size / k)
    .build(RunOrder::new(
        config.seed,
        Detection::ORDER_SALT,
        config.epochs,
        train.len(),
        config.batch_size,
        k,
    ));
    let valid_loader = DataLoaderBuilder::new(DetectionBatcher::new(test.clone(), None, 1.0))
        .batch_size(config.eval_batch_size)
        .build(RunOrder::plain(test.len()));
    let schedule = ScheduleLr::for_run(
        &config.schedule,
        config.optimizer.lr,
        config.epochs,
        train.len(),
        config.batch_size,
    );
    let steps = schedule.total();
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
    let plain = main.clone().inner();
    let model = model.fork(&plain);
    let predictions = predict(
        &model,
        &test,
        config.eval_batch_size,
        &DecodeConfig::default(),
        &plain,
        &mut |_, _| {},
    )?;
    let stats = score(&test, &predictions)?;
    Ok(DetectLearnerOutcome {
        model,
        stats,
        steps,
    })
}
