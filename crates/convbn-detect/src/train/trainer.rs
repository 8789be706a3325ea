//! The detection training loop. Several modes can run in lock-step on the same batches (same
//! seed, order and flips), one iteration of each in turn, so their losses compare step by step
//! and their times are measured under the same machine load.
//!
//! Each iteration: forward, FCOS loss (focal + GIoU + centerness), backward, optimizer step;
//! time and memory are measured around it. After each epoch the test set is scored with the
//! COCO evaluation. Checkpoints and resume work as for fine-tuning: batches are pure functions
//! of `(seed, epoch, position)`, and the model, optimizer state and log are restored exactly.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use convbn::{Mode, memory, set_mode};
use convbn_train::RunOptions;
use convbn_train::checkpoint::{self, Log, Position, Resumed};
use convbn_train::rng::Rng;
use convbn_train::trainer::materialize;
use convbn_zoo::Architecture;
use convbn_zoo::pretrained::build;

use crate::criterion::fcos_loss;
use crate::decode::DecodeConfig;
use crate::detector::{Backbone, Detector};
use crate::train::batch::{images, targets};
use crate::train::config::DetectConfig;
use crate::train::data::{DetectSplit, load};
use crate::train::evaluate::{predict, score};
use crate::train::log::{DetectEvaluation, DetectIteration, DetectLog};
use crate::train::observer::DetectObserver;
use crate::{DetectError, Result};

impl Log for DetectLog {
    const KIND: &'static str = "detection";
    type Config = DetectConfig;
    fn mode(&self) -> &str {
        &self.mode
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
}

/// One mode's detector, optimizer and log.
struct Run {
    mode: Mode,
    model: Option<Detector>,
    optimizer: ModuleOptimizer,
    log: DetectLog,
}

impl Run {
    fn model(&self) -> &Detector {
        self.model.as_ref().expect("model present between steps")
    }
}

/// A detection training run of one or more modes in lock-step.
pub struct DetectTrain {
    config: DetectConfig,
    options: RunOptions,
    data: DetectSplit,
    device: Device,
    runs: Vec<Run>,
    position: Position,
}

/// The file holding a mode's checkpoint under a run directory.
pub fn checkpoint_file(out_dir: &Path, mode: Mode) -> PathBuf {
    convbn_train::trainer::checkpoint_file(out_dir, mode)
}

/// The file holding a mode's JSON log under a run directory.
pub fn log_file(out_dir: &Path, mode: Mode) -> PathBuf {
    convbn_train::trainer::log_file(out_dir, mode)
}

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
    let mode: Mode = log.mode.parse().map_err(|_| {
        DetectError::Invalid(format!("{}: unknown mode '{}'", path.display(), log.mode))
    })?;
    let config = DetectConfig {
        start: convbn_train::Start::Random,
        ..log.config.clone()
    };
    let mut model = initial_detector(&config, log.classes.len(), false, device)?;
    set_mode(&mut model, mode)?;
    saved.load_into(&mut model)?;
    Ok((model, log))
}

impl DetectTrain {
    /// Start a new run of `modes` on `device` (an autodiff device).
    pub fn new(
        config: DetectConfig,
        modes: &[Mode],
        options: RunOptions,
        device: &Device,
    ) -> Result<Self> {
        Self::prepare(config, modes, options, device, false)
    }

    /// Continue the run in `options.out_dir` from its checkpoints; `config` must equal theirs.
    pub fn resume(
        config: DetectConfig,
        modes: &[Mode],
        options: RunOptions,
        device: &Device,
    ) -> Result<Self> {
        Self::prepare(config, modes, options, device, true)
    }

    fn prepare(
        config: DetectConfig,
        modes: &[Mode],
        options: RunOptions,
        device: &Device,
        resume: bool,
    ) -> Result<Self> {
        config.validate()?;
        if modes.is_empty() {
            return Err(DetectError::Invalid("give at least one mode".into()));
        }
        if modes.contains(&Mode::Train) {
            return Err(DetectError::Invalid(
                "detection keeps the backbone's BN statistics frozen (MMDetection's \
                 norm_eval=True); use --mode eval, tune or deploy"
                    .into(),
            ));
        }
        let data = load(&config, options.fetch)?;
        let classes = data.train.classes.clone();
        let mut runs = Vec::new();
        let mut positions = Vec::new();
        for &mode in modes {
            let path = checkpoint_file(&options.out_dir, mode);
            // Built per mode, not cloned: clones of a burn module share their tensors.
            let mut model = initial_detector(&config, classes.len(), options.fetch, device)?;
            set_mode(&mut model, mode)?;
            let optimizer = config.optimizer.init();
            let mut run = if resume {
                let r: Resumed<Detector, DetectLog> =
                    checkpoint::resume(&path, mode, &config, model, optimizer)?;
                positions.push(r.position);
                checkpoint::create_parent(&path)?;
                Run {
                    mode,
                    model: Some(r.model),
                    optimizer: r.optimizer,
                    log: r.log,
                }
            } else {
                checkpoint::prepare_new(&path, options.overwrite)?;
                Run {
                    mode,
                    model: Some(model),
                    optimizer,
                    log: DetectLog {
                        mode: mode.to_string(),
                        config: config.clone(),
                        classes: classes.clone(),
                        iterations: Vec::new(),
                        evaluations: Vec::new(),
                        summary: None,
                    },
                }
            };
            run.log.summary = None;
            runs.push(run);
        }
        let position = checkpoint::common_position(positions, &options.out_dir)?;
        Ok(Self {
            config,
            options,
            data,
            device: device.clone(),
            runs,
            position,
        })
    }

    /// Iterations per epoch (the last batch of an epoch may be smaller).
    pub fn steps_per_epoch(&self) -> usize {
        self.data.train.len().div_ceil(self.config.batch_size)
    }

    /// Iterations of the whole run.
    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.config.epochs
    }

    /// The next iteration.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Training and test images.
    pub fn data(&self) -> &DetectSplit {
        &self.data
    }

    /// The logs so far, one per mode.
    pub fn logs(&self) -> Vec<&DetectLog> {
        self.runs.iter().map(|r| &r.log).collect()
    }

    /// The detectors, one per mode.
    pub fn models(&self) -> Vec<(Mode, &Detector)> {
        self.runs.iter().map(|r| (r.mode, r.model())).collect()
    }

    /// Train until the last epoch is done (or `stop_after`), then return the logs with their
    /// summaries.
    pub fn run(&mut self, observer: &mut dyn DetectObserver) -> Result<Vec<DetectLog>> {
        let total = self.total_steps();
        let per_epoch = self.steps_per_epoch();
        observer.start(total, self.position.step);
        let mut order: Option<(usize, Vec<usize>)> = None;
        while self.position.epoch < self.config.epochs {
            if self.runs.iter().all(|r| r.log.diverged()) {
                break; // every mode diverged: nothing left to train
            }
            let Position { epoch, step, .. } = self.position;
            if self.options.stop_after.is_some_and(|s| step >= s) {
                self.save_all()?;
                return Ok(self.logs().into_iter().cloned().collect());
            }
            if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                let n = self.data.train.len();
                order = Some((
                    epoch,
                    Rng::new(&[self.config.seed, epoch as u64, 0xDE7]).permutation(n),
                ));
            }
            let epoch_order = &order.as_ref().expect("drawn above").1;
            let positions = self
                .position
                .batch(self.config.batch_size, epoch_order.len());
            let indices = epoch_order[positions.clone()].to_vec();
            let augmentations: Vec<_> = positions
                .map(|p| {
                    let mut rng = Rng::new(&[self.config.seed, epoch as u64, p as u64, 0xF11]);
                    self.config.augment.draw(&mut rng)
                })
                .collect();
            let x = images(&self.data.train, &indices, &augmentations, &self.device);
            let batch_targets = targets(&self.data.train, &indices, &augmentations);
            let lr = self
                .config
                .schedule
                .lr(self.config.optimizer.lr, step, total, epoch);
            for run in &mut self.runs {
                if run.log.diverged() {
                    continue; // diverged: stopped before the bad step, record kept
                }
                let base = memory::allocated();
                memory::reset_peak();
                let start = Instant::now();
                let outputs = run.model().forward(x.clone())?;
                let parts = fcos_loss(&outputs, &batch_targets, &self.device);
                let value = |t: &burn::tensor::Tensor<1>| t.clone().into_scalar::<f64>();
                let (loss, classification, regression, centerness) = (
                    value(&parts.total),
                    value(&parts.classification),
                    value(&parts.regression),
                    value(&parts.centerness),
                );
                // A non-finite loss stops the mode before its step: the model (and so every
                // later checkpoint) keeps the last finite weights.
                if loss.is_finite() {
                    let grads = GradientsParams::from_grads(parts.total.backward(), run.model());
                    let model = run.model.take().expect("model present between steps");
                    run.model = Some(run.optimizer.step(lr, model, grads));
                }
                let record = DetectIteration {
                    step,
                    epoch,
                    loss,
                    classification,
                    regression,
                    centerness,
                    positives: parts.positives,
                    lr,
                    ms: start.elapsed().as_secs_f64() * 1e3,
                    step_peak_bytes: memory::peak().saturating_sub(base),
                    peak_bytes: memory::peak(),
                };
                observer.step(run.mode, &record);
                run.log.iterations.push(record);
            }
            if self.position.ends_epoch(per_epoch) {
                self.evaluate_all(epoch, observer)?;
            }
            self.position = self.position.next(per_epoch);
            if self.position.checkpoint_due(self.options.checkpoint_every) {
                self.save_all()?;
                observer.checkpoint(self.position.step);
            }
        }
        for run in &mut self.runs {
            run.log.summary = Some(run.log.summarize());
        }
        self.save_all()?;
        Ok(self.logs().into_iter().cloned().collect())
    }

    fn evaluate_all(&mut self, epoch: usize, observer: &mut dyn DetectObserver) -> Result<()> {
        let device = self.device.clone().inner();
        let test = &self.data.test;
        for run in &mut self.runs {
            let model = run.model().valid();
            let mode = run.mode;
            let predictions = predict(
                &model,
                test,
                self.config.eval_batch_size,
                &DecodeConfig::default(),
                &device,
                &mut |done, total| observer.evaluating(mode, done, total),
            )?;
            let stats = score(test, &predictions)?;
            let record = DetectEvaluation {
                epoch,
                train_loss: run.log.epoch_loss(epoch),
                stats: stats.stats,
                test_images: test.len(),
                detections: predictions.iter().map(Vec::len).sum(),
            };
            observer.epoch(mode, &record);
            run.log.evaluations.push(record);
        }
        Ok(())
    }

    /// Write every mode's checkpoint and log.
    fn save_all(&self) -> Result<()> {
        let out = &self.options.out_dir;
        for run in &self.runs {
            checkpoint::save_run(
                &checkpoint_file(out, run.mode),
                &log_file(out, run.mode),
                run.model(),
                &run.optimizer,
                self.position,
                &run.log,
            )?;
        }
        Ok(())
    }
}
