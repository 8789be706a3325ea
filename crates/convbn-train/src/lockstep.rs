//! The lock-step runner shared by fine-tuning and detection. Several modes run on the same
//! batches (same seed, data order and augmentation), one iteration of each in turn, so their
//! losses compare step by step and their times are measured under the same machine load.
//!
//! Each iteration, per mode: forward and loss ([`Task::forward`]), backward, optimizer step,
//! with time and memory measured around it by one [`Meter`]. After each epoch every mode is
//! evaluated ([`Task::evaluate`]). A checkpoint of each mode is written every
//! `checkpoint_every` iterations and after each epoch; a resumed run computes exactly what the
//! uninterrupted run computes, because the batches are pure functions of
//! `(seed, epoch, position)` and the model, optimizer state and log are restored bit for bit.
//! A mode whose loss turns NaN or infinite stops before that step (its checkpoints keep the
//! last finite weights); the loop ends when every mode has.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use convbn::measure::Meter;
use convbn::threads::on_compute_threads;
use convbn::{ConvBnError, Mode, set_mode};

use crate::checkpoint::{self, Log, Position};
use crate::observer::Observer;
use crate::rng::Rng;
use crate::{OptimizerConfig, Schedule, TrainError};

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

/// The order in which epoch `epoch` of a run seeded with `seed` visits `len` training images:
/// a permutation drawn from `(seed, epoch, salt)` (the task's [`Task::ORDER_SALT`]).
pub fn epoch_order(seed: u64, epoch: usize, salt: u64, len: usize) -> Vec<usize> {
    Rng::new(&[seed, epoch as u64, salt]).permutation(len)
}

/// What one iteration of one mode measured, for the task to put into its record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Iteration {
    /// Global iteration, from 0.
    pub step: usize,
    /// Epoch, from 0.
    pub epoch: usize,
    /// The loss's value (NaN or infinite when the mode diverged here).
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Wall-clock milliseconds of forward, backward and optimizer step.
    pub ms: f64,
    /// Highest heap use during the iteration beyond what was held before it.
    pub step_peak_bytes: usize,
    /// Highest heap use of the process during the iteration.
    pub peak_bytes: usize,
}

/// A loss to differentiate, and what the task records about the batch besides it.
pub struct Forward<D> {
    /// The scalar loss (backward runs from it when it is finite).
    pub loss: Tensor<1>,
    /// Task-specific figures of the iteration (accuracy, loss parts), read before backward.
    pub details: D,
}

/// The settings of a run that the runner itself reads.
pub struct Plan<'a> {
    /// Seed of every random draw of the run.
    pub seed: u64,
    /// Epochs of the run.
    pub epochs: usize,
    /// Training images per iteration.
    pub batch_size: usize,
    /// The optimizer and its base learning rate.
    pub optimizer: &'a OptimizerConfig,
    /// The learning-rate schedule.
    pub schedule: &'a Schedule,
}

impl<'a> Plan<'a> {
    /// The plan of a run with these settings.
    pub fn new(
        seed: u64,
        epochs: usize,
        batch_size: usize,
        optimizer: &'a OptimizerConfig,
        schedule: &'a Schedule,
    ) -> Self {
        Self {
            seed,
            epochs,
            batch_size,
            optimizer,
            schedule,
        }
    }
}

/// What a lock-step run trains: everything that differs between fine-tuning and detection.
pub trait Task: Sized + Sync {
    /// The model each mode trains.
    type Model: Module;
    /// The run's log, carried in every checkpoint.
    type Log: Log + Clone;
    /// Task-specific figures of one iteration (made on a compute thread: `Send`).
    type Details: Send;
    /// The inputs of one iteration, shared by every mode (read on a compute thread: `Sync`).
    type Batch: Sync;
    /// Everything that can stop the run (`Send`: a step runs on a compute thread).
    type Error: From<TrainError> + From<ConvBnError> + Send;

    /// Salt of the per-epoch shuffle: `Rng::new(&[seed, epoch, ORDER_SALT])`.
    const ORDER_SALT: u64;

    /// Refuse modes the task cannot train (called before anything is loaded).
    fn check_modes(_modes: &[Mode]) -> Result<(), Self::Error> {
        Ok(())
    }
    /// The task of a validated `config`, with its data loaded (fetched if `fetch`).
    fn new(config: Config<Self>, fetch: bool, device: &Device) -> Result<Self, Self::Error>;
    /// What the runner reads of the configuration.
    fn plan(&self) -> Plan<'_>;
    /// Training images.
    fn train_len(&self) -> usize;
    /// The starting model of one mode, in Eval mode (built per mode, never cloned: clones of
    /// a burn module share their running statistics).
    fn initial_model(&self, fetch: bool, device: &Device) -> Result<Self::Model, Self::Error>;
    /// The empty log of a new run of `mode`.
    fn new_log(&self, mode: Mode) -> Self::Log;
    /// The batch at position `at`, whose epoch's shuffled order is `order`.
    fn batch(&self, at: Position, order: &[usize], device: &Device) -> Self::Batch;
    /// Forward and loss of `batch`.
    fn forward(
        &self,
        model: &Self::Model,
        batch: &Self::Batch,
    ) -> Result<Forward<Self::Details>, Self::Error>;
    /// The log record of an iteration.
    fn record(&self, iteration: Iteration, details: Self::Details) -> Record<Self>;
    /// Evaluate `model` (inference: `valid()`, on `device` without autodiff) after `epoch`,
    /// given the log so far; `progress(done, total)` reports how far the test set is.
    fn evaluate(
        &self,
        model: &Self::Model,
        device: &Device,
        epoch: usize,
        log: &Self::Log,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Evaluation<Self>, Self::Error>;
}

/// The configuration of a task's runs (its log's).
pub type Config<T> = <<T as Task>::Log as Log>::Config;
/// The iteration record of a task's log.
pub type Record<T> = <<T as Task>::Log as Log>::Iteration;
/// The evaluation record of a task's log.
pub type Evaluation<T> = <<T as Task>::Log as Log>::Evaluation;

/// One mode's model, optimizer and log.
struct Run<T: Task> {
    mode: Mode,
    model: Option<T::Model>,
    optimizer: ModuleOptimizer,
    log: T::Log,
}

impl<T: Task> Run<T> {
    fn model(&self) -> &T::Model {
        self.model.as_ref().expect("model present between steps")
    }
}

/// A run of one or more modes of a [`Task`] in lock-step.
pub struct Lockstep<T: Task> {
    task: T,
    options: RunOptions,
    device: Device,
    runs: Vec<Run<T>>,
    position: Position,
}

impl<T: Task> Lockstep<T> {
    /// Start a new run of `modes` on `device` (an autodiff device).
    pub fn new(
        config: Config<T>,
        modes: &[Mode],
        options: RunOptions,
        device: &Device,
    ) -> Result<Self, T::Error> {
        Self::prepare(config, modes, options, device, false)
    }

    /// Continue the run in `options.out_dir` from its checkpoints; `config` must equal theirs.
    pub fn resume(
        config: Config<T>,
        modes: &[Mode],
        options: RunOptions,
        device: &Device,
    ) -> Result<Self, T::Error> {
        Self::prepare(config, modes, options, device, true)
    }

    fn prepare(
        config: Config<T>,
        modes: &[Mode],
        options: RunOptions,
        device: &Device,
        resume: bool,
    ) -> Result<Self, T::Error> {
        if modes.is_empty() {
            return Err(TrainError::Config("give at least one mode".into()).into());
        }
        T::check_modes(modes)?;
        let task = T::new(config, options.fetch, device)?;
        let mut runs = Vec::new();
        let mut positions = Vec::new();
        for &mode in modes {
            let path = checkpoint_file(&options.out_dir, mode);
            let mut model = task.initial_model(options.fetch, device)?;
            set_mode(&mut model, mode)?;
            let optimizer = task.plan().optimizer.init();
            let mut run: Run<T> = if resume {
                let log = task.new_log(mode);
                let r: checkpoint::Resumed<T::Model, T::Log> =
                    checkpoint::resume(&path, mode, log.config(), model, optimizer)?;
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
                    log: task.new_log(mode),
                }
            };
            run.log.set_summary(false);
            runs.push(run);
        }
        let position = checkpoint::common_position(positions, &options.out_dir)?;
        Ok(Self {
            task,
            options,
            device: device.clone(),
            runs,
            position,
        })
    }

    /// The task.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// Iterations per epoch (the last batch of an epoch may be smaller).
    pub fn steps_per_epoch(&self) -> usize {
        self.task.train_len().div_ceil(self.task.plan().batch_size)
    }

    /// Iterations of the whole run.
    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.task.plan().epochs
    }

    /// The next iteration.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The logs so far, one per mode.
    pub fn logs(&self) -> Vec<&T::Log> {
        self.runs.iter().map(|r| &r.log).collect()
    }

    /// The models, one per mode.
    pub fn models(&self) -> Vec<(Mode, &T::Model)> {
        self.runs.iter().map(|r| (r.mode, r.model())).collect()
    }

    /// Train until the last epoch is done (or `stop_after`), then return the logs (with their
    /// summaries when the run finished).
    pub fn run(&mut self, observer: &mut dyn Observer<T::Log>) -> Result<Vec<T::Log>, T::Error> {
        let total = self.total_steps();
        let per_epoch = self.steps_per_epoch();
        observer.start(total, self.position.step);
        // The current epoch's shuffled order, drawn once per epoch.
        let mut order: Option<(usize, Vec<usize>)> = None;
        let plan = self.task.plan();
        while self.position.epoch < plan.epochs {
            if self.runs.iter().all(|r| r.log.diverged()) {
                break; // every mode diverged: nothing left to train
            }
            let Position { epoch, step, .. } = self.position;
            if self.options.stop_after.is_some_and(|s| step >= s) {
                self.save_all()?;
                return Ok(self.logs().into_iter().cloned().collect());
            }
            if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                let len = self.task.train_len();
                order = Some((epoch, epoch_order(plan.seed, epoch, T::ORDER_SALT, len)));
            }
            let epoch_order = &order.as_ref().expect("drawn above").1;
            let batch = self.task.batch(self.position, epoch_order, &self.device);
            let lr = plan.schedule.lr(plan.optimizer.lr, step, total, epoch);
            for run in &mut self.runs {
                if run.log.diverged() {
                    continue; // diverged: stopped before the bad step, record kept
                }
                let (task, device) = (&self.task, &self.device);
                let (model_slot, optimizer) = (&mut run.model, &mut run.optimizer);
                let mut step_once = || {
                    let meter = Meter::start_on(device);
                    let model = model_slot.as_ref().expect("model present between steps");
                    let forward = task.forward(model, &batch)?;
                    let loss = forward.loss.clone().into_scalar::<f64>();
                    // A reading after forward, when the step holds the most: a GPU's memory
                    // pool keeps no peak, so there the step's peak is the highest reading (a
                    // no-op for the CPU's counting allocator, which tracks its own peak).
                    meter.held_bytes();
                    // A non-finite loss stops the mode before its step: the model (and so
                    // every later checkpoint) keeps the last finite weights.
                    if loss.is_finite() {
                        let grads = GradientsParams::from_grads(forward.loss.backward(), model);
                        // Taken only now, so an error above leaves the run's model in place.
                        let model = model_slot.take().expect("model present between steps");
                        *model_slot = Some(optimizer.step(lr, model, grads));
                    }
                    let iteration = Iteration {
                        step,
                        epoch,
                        loss,
                        lr,
                        ms: meter.elapsed_ms(),
                        step_peak_bytes: meter.peak_bytes(),
                        peak_bytes: meter.process_peak_bytes(),
                    };
                    Ok::<_, T::Error>((forward, iteration))
                };
                // On the CPU backend's compute threads (`convbn::threads`), except in Train
                // mode: burn keeps the BN running statistics that Train updates per thread,
                // and which pool thread runs a step changes from step to step.
                let (forward, iteration) = if run.mode == Mode::Train {
                    step_once()?
                } else {
                    on_compute_threads(step_once)?
                };
                let record = self.task.record(iteration, forward.details);
                observer.step(run.mode, &record, per_epoch);
                run.log.push_iteration(record);
            }
            if self.position.ends_epoch(per_epoch) {
                let device = self.device.clone().inner();
                for run in &mut self.runs {
                    let model = run.model().valid();
                    let mode = run.mode;
                    let mut progress = |done, total| observer.evaluating(mode, done, total);
                    let record =
                        self.task
                            .evaluate(&model, &device, epoch, &run.log, &mut progress)?;
                    observer.epoch(mode, &record);
                    run.log.push_evaluation(record);
                }
            }
            self.position = self.position.next(per_epoch);
            if self.position.checkpoint_due(self.options.checkpoint_every) {
                self.save_all()?;
                observer.checkpoint(self.position.step);
            }
        }
        for run in &mut self.runs {
            run.log.set_summary(true);
        }
        self.save_all()?;
        Ok(self.logs().into_iter().cloned().collect())
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
