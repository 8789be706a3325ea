//! The fine-tuning loop. Several modes can run in lock-step on the same batches (same seed,
//! same data order, same augmentation), one iteration of each in turn, so their losses can be
//! compared step by step and their times are measured under the same machine load.
//!
//! Each iteration: forward, mean cross-entropy, backward, optimizer step; time and memory are
//! measured around it. After each epoch the test set is evaluated. A checkpoint of each mode is
//! written every `checkpoint_every` iterations and after each epoch; [`Finetune::resume`]
//! continues from it and computes exactly what the uninterrupted run computes, because the
//! batches are pure functions of `(seed, epoch, position)` and the model, optimizer state and
//! log are restored bit for bit.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use convbn::{Mode, memory, set_mode};
use convbn_zoo::pretrained::build;
use convbn_zoo::{Architecture, Model};

use crate::checkpoint::{self, Log, Position};
use crate::config::{DataSource, FinetuneConfig};
use crate::data::augment::{Jitter, Transform};
use crate::data::{Split, fashion_mnist, folder};
use crate::log::{EpochRecord, IterationRecord, RunLog};
use crate::rng::Rng;
use crate::{TrainError, observer::Observer};

/// Options that change how a run is carried out but not what it computes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Directory of the run: `<out>/<mode>/checkpoint.safetensors` and `log.json`.
    pub out_dir: PathBuf,
    /// Write a checkpoint every this many iterations (and after every epoch); 0: epochs only.
    pub checkpoint_every: usize,
    /// Stop (with a checkpoint) once this many iterations have run in total.
    pub stop_after: Option<usize>,
    /// Download missing assets.
    pub fetch: bool,
    /// Replace the checkpoints of an earlier run in `out_dir` instead of refusing to.
    pub overwrite: bool,
}

/// One mode's model, optimizer and log.
struct Run {
    mode: Mode,
    model: Option<Model>,
    optimizer: ModuleOptimizer,
    log: RunLog,
}

impl Run {
    fn model(&self) -> &Model {
        self.model.as_ref().expect("model present between steps")
    }
}

/// A fine-tuning run of one or more modes in lock-step.
pub struct Finetune {
    config: FinetuneConfig,
    options: RunOptions,
    data: Split,
    transform: Transform,
    device: Device,
    runs: Vec<Run>,
    position: Position,
}

/// The file holding a mode's checkpoint under a run directory.
pub fn checkpoint_file(out_dir: &Path, mode: Mode) -> PathBuf {
    out_dir
        .join(mode.to_string())
        .join("checkpoint.safetensors")
}

/// The file holding a mode's JSON log under a run directory.
pub fn log_file(out_dir: &Path, mode: Mode) -> PathBuf {
    out_dir.join(mode.to_string()).join("log.json")
}

impl Finetune {
    /// Start a new run of `modes` on `device` (an autodiff device).
    pub fn new(
        config: FinetuneConfig,
        modes: &[Mode],
        options: RunOptions,
        device: &Device,
    ) -> Result<Self, TrainError> {
        Self::prepare(config, modes, options, device, false)
    }

    /// Continue the run in `options.out_dir` from its checkpoints. `config` must equal the
    /// checkpoints' config.
    pub fn resume(
        config: FinetuneConfig,
        modes: &[Mode],
        options: RunOptions,
        device: &Device,
    ) -> Result<Self, TrainError> {
        Self::prepare(config, modes, options, device, true)
    }

    fn prepare(
        config: FinetuneConfig,
        modes: &[Mode],
        options: RunOptions,
        device: &Device,
        resume: bool,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        if modes.is_empty() {
            return Err(TrainError::Config("give at least one mode".into()));
        }
        let arch: Architecture = config.model.parse()?;
        let data = load_data(&config, options.fetch)?;
        let (mean, std) = arch.normalization();
        let transform = Transform {
            size: config.size,
            mean,
            std,
        };
        let classes = data.train.classes.len();
        let mut runs = Vec::new();
        let mut positions = Vec::new();
        for &mode in modes {
            let path = checkpoint_file(&options.out_dir, mode);
            // Built per mode, not cloned: clones of a burn module share their running
            // statistics, which Train mode updates in place.
            let mut model = initial_model(arch, &config, classes, options.fetch, device)?;
            let optimizer = config.optimizer.init();
            let mut run = if resume {
                set_mode(&mut model, mode)?;
                let r: checkpoint::Resumed<Model, RunLog> =
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
                set_mode(&mut model, mode)?;
                Run {
                    mode,
                    model: Some(model),
                    optimizer,
                    log: RunLog {
                        mode: mode.to_string(),
                        config: config.clone(),
                        iterations: Vec::new(),
                        epochs: Vec::new(),
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
            transform,
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
    pub fn data(&self) -> &Split {
        &self.data
    }

    /// The logs so far, one per mode.
    pub fn logs(&self) -> Vec<&RunLog> {
        self.runs.iter().map(|r| &r.log).collect()
    }

    /// The models, one per mode.
    pub fn models(&self) -> Vec<(Mode, &Model)> {
        self.runs.iter().map(|r| (r.mode, r.model())).collect()
    }

    /// Train until the last epoch is done (or `stop_after`), then return the logs with their
    /// summaries.
    pub fn run(&mut self, observer: &mut dyn Observer) -> Result<Vec<RunLog>, TrainError> {
        let total = self.total_steps();
        let per_epoch = self.steps_per_epoch();
        observer.start(total, self.position.step);
        let loss_fn = CrossEntropyLossConfig::new().init(&self.device);
        // The current epoch's shuffled order, drawn once per epoch.
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
                order = Some((epoch, self.epoch_order(epoch)));
            }
            let epoch_order = &order.as_ref().expect("drawn above").1;
            let (x, y, indices) = self.batch(self.position, epoch_order);
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
                let logits = run.model().forward(x.clone())?;
                let loss = loss_fn.forward(logits.clone(), y.clone());
                let loss_value = loss.clone().into_scalar::<f64>();
                let correct = logits
                    .argmax(1)
                    .reshape([indices.len()])
                    .equal(y.clone())
                    .int()
                    .sum()
                    .into_scalar::<i64>();
                // A non-finite loss stops the mode before its step: the model (and so every
                // later checkpoint) keeps the last finite weights.
                if loss_value.is_finite() {
                    let grads = GradientsParams::from_grads(loss.backward(), run.model());
                    // Taken only now, so an error above leaves the run's model in place.
                    let model = run.model.take().expect("model present between steps");
                    run.model = Some(run.optimizer.step(lr, model, grads));
                }
                let ms = start.elapsed().as_secs_f64() * 1e3;
                let record = IterationRecord {
                    step,
                    epoch,
                    loss: loss_value,
                    accuracy: correct as f64 / indices.len() as f64,
                    lr,
                    ms,
                    step_peak_bytes: memory::peak().saturating_sub(base),
                    peak_bytes: memory::peak(),
                };
                observer.step(run.mode, &record, per_epoch);
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

    /// The shuffled order of the training images in `epoch`.
    fn epoch_order(&self, epoch: usize) -> Vec<usize> {
        Rng::new(&[self.config.seed, epoch as u64, 0x5417]).permutation(self.data.train.len())
    }

    /// The batch at position `at` (its epoch's order is `order`): inputs, labels, dataset
    /// indices.
    fn batch(&self, at: Position, order: &[usize]) -> (Tensor<4>, Tensor<1, Int>, Vec<usize>) {
        let (seed, epoch) = (self.config.seed, at.epoch);
        let positions = at.batch(self.config.batch_size, order.len());
        let indices: Vec<usize> = order[positions.clone()].to_vec();
        let jitter: Vec<Jitter> = if self.config.augment {
            positions
                .map(|p| {
                    let mut rng = Rng::new(&[seed, epoch as u64, p as u64, 0xA06]);
                    Jitter::draw(&mut rng, self.data.train.height, self.data.train.width)
                })
                .collect()
        } else {
            Vec::new()
        };
        let x = self
            .transform
            .batch(&self.data.train, &indices, &jitter, &self.device);
        let y = labels(&self.data.train.labels, &indices, &self.device);
        (x, y, indices)
    }

    fn evaluate_all(
        &mut self,
        epoch: usize,
        observer: &mut dyn Observer,
    ) -> Result<(), TrainError> {
        for i in 0..self.runs.len() {
            let (accuracy, loss) = self.evaluate(i, observer)?;
            let run = &mut self.runs[i];
            let (train_loss, train_accuracy) = run.log.epoch_training(epoch);
            let record = EpochRecord {
                epoch,
                train_loss,
                train_accuracy,
                test_accuracy: accuracy,
                test_loss: loss,
                test_images: self.data.test.len(),
            };
            observer.epoch(run.mode, &record);
            run.log.epochs.push(record);
        }
        Ok(())
    }

    /// Test accuracy and mean loss of run `i` (inference: no autodiff; Train mode uses the
    /// running statistics).
    fn evaluate(&self, i: usize, observer: &mut dyn Observer) -> Result<(f64, f64), TrainError> {
        let run = &self.runs[i];
        let model = run.model().valid();
        let device = self.device.clone().inner();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let test = &self.data.test;
        let (mut correct, mut loss_sum) = (0i64, 0f64);
        let b = self.config.eval_batch_size;
        for start in (0..test.len()).step_by(b) {
            let idx: Vec<usize> = (start..(start + b).min(test.len())).collect();
            let x = self.transform.batch(test, &idx, &[], &device);
            let y = labels(&test.labels, &idx, &device);
            let logits = model.forward(x)?;
            loss_sum += loss_fn
                .forward(logits.clone(), y.clone())
                .into_scalar::<f64>()
                * idx.len() as f64;
            correct += logits
                .argmax(1)
                .reshape([idx.len()])
                .equal(y)
                .int()
                .sum()
                .into_scalar::<i64>();
            observer.evaluating(run.mode, idx.last().map_or(0, |l| l + 1), test.len());
        }
        Ok((
            correct as f64 / test.len() as f64,
            loss_sum / test.len() as f64,
        ))
    }

    /// Write every mode's checkpoint and log.
    fn save_all(&self) -> Result<(), TrainError> {
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

/// Labels of `indices` as an int tensor.
fn labels(all: &[usize], indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let y: Vec<i64> = indices.iter().map(|&i| all[i] as i64).collect();
    Tensor::from_data(TensorData::new(y, [indices.len()]), device)
}

/// The dataset of `config`, truncated to its limits and checked.
pub fn load_data(config: &FinetuneConfig, fetch: bool) -> Result<Split, TrainError> {
    let split = match &config.data {
        DataSource::FashionMnist => fashion_mnist::load(fetch)?,
        DataSource::Folder {
            train,
            test,
            test_fraction,
        } => folder::load_split(
            train,
            test.as_deref(),
            *test_fraction,
            config.size as u32,
            config.seed,
        )?,
    };
    let split = Split {
        train: split.train.truncated(config.train_limit),
        test: split.test.truncated(config.test_limit),
    };
    split.check()?;
    Ok(split)
}

/// The starting model: pretrained trunk, a fresh seeded classifier for `classes` classes, all
/// blocks in Eval mode.
pub fn initial_model(
    arch: Architecture,
    config: &FinetuneConfig,
    classes: usize,
    fetch: bool,
    device: &Device,
) -> Result<Model, TrainError> {
    device.seed(config.seed);
    let model = build(arch, &config.start.weights(), fetch, device)?;
    device.seed(config.seed ^ 0x0C1A_55E5);
    let model = model.with_num_classes(classes, device);
    materialize(&model);
    Ok(model)
}

/// burn initialises parameters lazily, on first use: draw every parameter of `model` now,
/// while the generator is in its seeded state, not at whatever point the first forward comes.
pub fn materialize<M: Module>(model: &M) {
    model.visit(&mut Materialize);
}

/// Forces the lazy initialisation of every float parameter.
struct Materialize;

impl burn::module::ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let _ = param.val();
    }
}
