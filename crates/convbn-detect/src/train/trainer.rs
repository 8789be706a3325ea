//! Training a detector: the [`Task`] that [`Lockstep`] runs for `detect train` (the FCOS loss:
//! focal + GIoU + centerness; the COCO evaluation after each epoch), and [`DetectTrain`], a run
//! of it. Checkpoints and resume work as for fine-tuning.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use convbn::{Mode, set_mode};
use convbn_train::checkpoint::{self, Log, Position};
use convbn_train::lockstep::{Evaluation, Forward, Iteration, Lockstep, Plan, Record, Task};
use convbn_train::log::Costs;
use convbn_train::trainer::materialize;
use convbn_zoo::Architecture;
use convbn_zoo::pretrained::build;

use crate::assign::Targets;
use crate::criterion::fcos_loss;
use crate::decode::DecodeConfig;
use crate::detector::{Backbone, Detector};
use crate::train::batch::{images, targets};
use crate::train::config::DetectConfig;
use crate::train::data::{DetectSplit, load};
use crate::train::evaluate::{predict, score};
use crate::train::log::{DetectEvaluation, DetectIteration, DetectLog};
use crate::{DetectError, Result};

impl Log for DetectLog {
    const KIND: &'static str = "detection";
    type Config = DetectConfig;
    type Iteration = DetectIteration;
    type Evaluation = DetectEvaluation;
    fn mode(&self) -> Mode {
        self.mode
    }
    fn config(&self) -> &DetectConfig {
        &self.config
    }
    fn finished(&self) -> bool {
        self.summary.is_some()
    }
    fn diverged(&self) -> bool {
        self.iterations.iter().any(|i| !i.loss.is_finite())
    }
    fn push_iteration(&mut self, record: DetectIteration) {
        self.iterations.push(record);
    }
    fn push_evaluation(&mut self, record: DetectEvaluation) {
        self.evaluations.push(record);
    }
    fn set_summary(&mut self, finished: bool) {
        self.summary = finished.then(|| self.summarize());
    }
    fn costs(&self) -> Costs {
        Costs::of(&self.iterations)
    }
    fn batch_size(&self) -> usize {
        self.config.batch_size
    }
}

/// Where a mode's checkpoint and log live under a run directory (as for fine-tuning).
pub use convbn_train::lockstep::{checkpoint_file, log_file};

/// The starting detector: the backbone with `config.start`'s weights, a fresh seeded FPN and
/// head for `classes` classes, every block in Eval mode.
pub fn initial_detector(
    config: &DetectConfig,
    classes: usize,
    fetch: bool,
    device: &Device,
) -> Result<Detector> {
    device.seed(config.seed);
    let arch: Architecture = config.backbone.parse()?;
    let backbone = Backbone::from_model(build(arch, &config.start.weights(), fetch, device)?)?;
    device.seed(config.seed ^ 0xDE7E_C7ED);
    let detector = Detector::new(backbone, classes, config.channels, device);
    materialize(&detector);
    Ok(detector)
}

/// A trained detector read from a run's checkpoint (any mode), with its log (config,
/// classes, mode). No asset is needed: the backbone's weights are in the checkpoint.
pub fn load_trained(path: &Path, device: &Device) -> Result<(Detector, DetectLog)> {
    let saved = checkpoint::read_as::<DetectLog>(path)?;
    let log = saved.state.log.clone();
    let mode = log.mode;
    let config = DetectConfig {
        start: convbn_train::Start::Random,
        ..log.config.clone()
    };
    let mut model = initial_detector(&config, log.classes.len(), false, device)?;
    set_mode(&mut model, mode)?;
    saved.load_into(&mut model)?;
    Ok((model, log))
}

/// Training a detector on a split: what [`Lockstep`] needs to know about it.
pub struct Detection {
    config: DetectConfig,
    data: DetectSplit,
}

impl Detection {
    /// Training and test images.
    pub fn data(&self) -> &DetectSplit {
        &self.data
    }
}

/// Images and FCOS targets of one batch.
pub struct Batch {
    x: Tensor<4>,
    targets: Vec<Targets>,
    device: Device,
}

/// The loss parts of one iteration.
pub struct Parts {
    classification: f64,
    regression: f64,
    centerness: f64,
    positives: usize,
}

impl Task for Detection {
    type Model = Detector;
    type Log = DetectLog;
    type Details = Parts;
    type Batch = Batch;
    type Error = DetectError;
    const ORDER_SALT: u64 = 0xDE7;

    fn check_modes(modes: &[Mode]) -> Result<()> {
        if modes.contains(&Mode::Train) {
            return Err(DetectError::Invalid(
                "detection keeps the backbone's BN statistics frozen (MMDetection's \
                 norm_eval=True); use --mode eval, tune or deploy"
                    .into(),
            ));
        }
        Ok(())
    }

    fn new(config: DetectConfig, fetch: bool, _device: &Device) -> Result<Self> {
        config.validate()?;
        let data = load(&config, fetch)?;
        Ok(Self { config, data })
    }

    fn plan(&self) -> Plan<'_> {
        let c = &self.config;
        Plan::new(c.seed, c.epochs, c.batch_size, &c.optimizer, &c.schedule)
    }

    fn train_len(&self) -> usize {
        self.data.train.len()
    }

    fn initial_model(&self, fetch: bool, device: &Device) -> Result<Detector> {
        initial_detector(&self.config, self.data.train.classes.len(), fetch, device)
    }

    fn new_log(&self, mode: Mode) -> DetectLog {
        DetectLog {
            mode,
            config: self.config.clone(),
            classes: self.data.train.classes.clone(),
            iterations: Vec::new(),
            evaluations: Vec::new(),
            summary: None,
        }
    }

    fn batch(&self, at: Position, order: &[usize], device: &Device) -> Batch {
        let positions = at.batch(self.config.batch_size, order.len());
        let indices = order[positions.clone()].to_vec();
        let augmentations: Vec<_> = positions
            .map(|p| self.config.augment.at(self.config.seed, at.epoch, p))
            .collect();
        Batch {
            x: images(&self.data.train, &indices, &augmentations, device),
            targets: targets(&self.data.train, &indices, &augmentations),
            device: device.clone(),
        }
    }

    fn forward(&self, model: &Detector, batch: &Batch) -> Result<Forward<Parts>> {
        let outputs = model.forward(batch.x.clone())?;
        let parts = fcos_loss(&outputs, &batch.targets, &batch.device);
        let value = |t: &Tensor<1>| t.clone().into_scalar::<f64>();
        Ok(Forward {
            details: Parts {
                classification: value(&parts.classification),
                regression: value(&parts.regression),
                centerness: value(&parts.centerness),
                positives: parts.positives,
            },
            loss: parts.total,
        })
    }

    fn record(&self, it: Iteration, parts: Parts) -> Record<Self> {
        DetectIteration {
            step: it.step,
            epoch: it.epoch,
            loss: it.loss,
            classification: parts.classification,
            regression: parts.regression,
            centerness: parts.centerness,
            positives: parts.positives,
            lr: it.lr,
            ms: it.ms,
            step_peak_bytes: it.step_peak_bytes,
            peak_bytes: it.peak_bytes,
        }
    }

    /// The COCO numbers on the test set.
    fn evaluate(
        &self,
        model: &Detector,
        device: &Device,
        epoch: usize,
        log: &DetectLog,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Evaluation<Self>> {
        let test = &self.data.test;
        let batch = self.config.eval_batch_size;
        let decode = DecodeConfig::default();
        let predictions = predict(model, test, batch, &decode, device, progress)?;
        let stats = score(test, &predictions)?;
        Ok(DetectEvaluation {
            epoch,
            train_loss: log.epoch_loss(epoch),
            stats: stats.stats,
            test_images: test.len(),
            detections: predictions.iter().map(Vec::len).sum(),
        })
    }
}

/// A detection training run of one or more modes in lock-step: `DetectTrain::new(config,
/// modes, options, device)`, `DetectTrain::resume(...)`, then `run`.
pub type DetectTrain = Lockstep<Detection>;
