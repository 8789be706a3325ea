//! Run checkpoints: one `.safetensors` file per mode holding the model's tensors (burn paths),
//! the optimizer's state (burnpack bytes, tensor `__optimizer__`) and, in the metadata, the run
//! state as JSON: config, position, parameter ids and the log so far. Written to a temporary
//! file and renamed, so an interrupted write never replaces a good checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use convbn::Mode;
use convbn_zoo::checkpoint::{Checkpoint, SafetensorsFile};
use convbn_zoo::load::{LoadOptions, Naming, expected, load, to_checkpoint};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::log::RunLog;
use crate::param_ids;

/// Name of the optimizer-state tensor.
const OPTIMIZER: &str = "__optimizer__";
/// Metadata key of the run state.
const STATE: &str = "convbn.run_state";

/// Where a run stands: the next iteration to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Position {
    /// Epoch of the next iteration.
    pub epoch: usize,
    /// Iteration within that epoch.
    pub step_in_epoch: usize,
    /// Global iteration count so far.
    pub step: usize,
}

impl Position {
    /// Whether this iteration is the last of its epoch (epochs of `per_epoch` iterations).
    pub fn ends_epoch(self, per_epoch: usize) -> bool {
        self.step_in_epoch + 1 == per_epoch
    }

    /// The iteration after this one.
    pub fn next(self, per_epoch: usize) -> Self {
        if self.ends_epoch(per_epoch) {
            Self {
                epoch: self.epoch + 1,
                step_in_epoch: 0,
                step: self.step + 1,
            }
        } else {
            Self {
                step_in_epoch: self.step_in_epoch + 1,
                step: self.step + 1,
                ..self
            }
        }
    }

    /// Whether a run that has reached this position writes checkpoints now: at the start of
    /// every epoch, and every `every` iterations (0: epochs only).
    pub fn checkpoint_due(self, every: usize) -> bool {
        self.step_in_epoch == 0 || (every > 0 && self.step.is_multiple_of(every))
    }

    /// The positions in the epoch's order of the images of this iteration's batch.
    pub fn batch(self, batch_size: usize, images: usize) -> std::ops::Range<usize> {
        self.step_in_epoch * batch_size..((self.step_in_epoch + 1) * batch_size).min(images)
    }
}

/// The non-tensor state of a run; `L` is its log (fine-tuning's [`RunLog`] by default,
/// detection has its own).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState<L = RunLog> {
    /// The next iteration.
    pub position: Position,
    /// Parameter ids by path (the optimizer state is keyed by them).
    pub param_ids: BTreeMap<String, u64>,
    /// The log so far (it holds the config and the mode).
    pub log: L,
}

/// Write `model`, the optimizer bytes and `state` to `path` atomically.
pub fn save<M: Module, L: Serialize>(
    path: &Path,
    model: &M,
    optimizer: &[u8],
    state: &RunState<L>,
) -> Result<(), TrainError> {
    let fail = |why: String| TrainError::Checkpoint(format!("writing {}: {why}", path.display()));
    let json = serde_json::to_string(state).map_err(|e| fail(e.to_string()))?;
    let bytes = to_checkpoint(model, &Naming::burn())
        .to_safetensors_bytes(
            &[(OPTIMIZER, optimizer)],
            Some(HashMap::from([(STATE.to_string(), json)])),
        )
        .map_err(fail)?;
    convbn_zoo::files::write_atomically(path, &bytes)?;
    Ok(())
}

/// A checkpoint opened by its header: the run state is read, the tensors only when a model
/// asks for them (bounded by that model's size).
pub struct Saved<L = RunLog> {
    file: SafetensorsFile,
    /// Run state.
    pub state: RunState<L>,
}

impl<L> Saved<L> {
    /// The file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Load the saved tensors into `model` strictly (same architecture, classes and mode):
    /// each tensor's shape is checked before it is read, non-finite values are refused.
    pub fn load_into<M: Module>(&self, model: &mut M) -> Result<(), TrainError> {
        let naming = Naming::burn();
        let tensors = self.file.checkpoint(Some(&expected(model, &naming)))?;
        load(model, &tensors, &naming, LoadOptions::default())?;
        Ok(())
    }

    /// The optimizer state (burnpack bytes), refused when larger than `limit` bytes.
    pub fn optimizer(&self, limit: usize) -> Result<Vec<u8>, TrainError> {
        let path = self.path().display();
        let len = self
            .file
            .byte_len(OPTIMIZER)
            .ok_or_else(|| TrainError::Checkpoint(format!("{path}: no optimizer state")))?;
        if len > limit {
            return Err(TrainError::Checkpoint(format!(
                "{path}: the optimizer state claims {len} bytes, more than a model of this size \
                 can have ({limit})"
            )));
        }
        Ok(self.file.read_raw(OPTIMIZER)?)
    }

    /// Every float tensor of the file (for tools and tests; bounded only by the file).
    pub fn tensors(&self) -> Result<Checkpoint, TrainError> {
        Ok(self.file.checkpoint(None)?)
    }
}

/// Read a fine-tuning checkpoint written by [`save`].
pub fn read(path: &Path) -> Result<Saved, TrainError> {
    read_as(path)
}

/// What kind of run wrote a run state, from its config's fields.
fn kind_of(state: &serde_json::Value) -> Option<&'static str> {
    let config = &state["log"]["config"];
    if config.get("backbone").is_some() {
        Some("a detection checkpoint (convbn detect train)")
    } else if config.get("model").is_some() {
        Some("a fine-tuning checkpoint (convbn finetune / compare-modes)")
    } else {
        None
    }
}

/// Read a checkpoint written by [`save`] whose log is an `L`: its header and run state only.
pub fn read_as<L: Log>(path: &Path) -> Result<Saved<L>, TrainError> {
    let corrupt = |why: String| {
        TrainError::Checkpoint(format!(
            "{} is not a usable checkpoint of a {} run ({why})",
            path.display(),
            L::KIND
        ))
    };
    let file = SafetensorsFile::open(path).map_err(|e| match e {
        convbn_zoo::ZooError::Corrupt { why, .. } => corrupt(why),
        e => TrainError::Zoo(e),
    })?;
    let json = file
        .metadata()
        .get(STATE)
        .ok_or_else(|| corrupt("no run state: not written by convbn's training".into()))?;
    // Logged f64 losses read back bit for bit (serde_json's `float_roundtrip` feature), so a
    // resumed run equals the uninterrupted one. On failure, the config says what the file is.
    let state: RunState<L> = serde_json::from_str(json).map_err(|e| {
        let value = serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
        match kind_of(&value) {
            Some(kind) if !kind.contains(L::KIND) => TrainError::Checkpoint(format!(
                "{} is {kind}, not a {} checkpoint",
                path.display(),
                L::KIND
            )),
            _ => corrupt(e.to_string()),
        }
    })?;
    Ok(Saved { file, state })
}

/// The largest optimizer state a model of `model_bytes` bytes of parameters can have: AdamW
/// keeps two moments per parameter (SGD with momentum one), plus the serialisation's records.
pub fn optimizer_limit(model_bytes: usize) -> usize {
    model_bytes.saturating_mul(3).saturating_add(16 << 20)
}

/// Bytes of the float parameters of `model`.
pub fn parameter_bytes<M: Module>(model: &M) -> usize {
    model.num_params().saturating_mul(4)
}

/// A run log that checkpoints carry: it knows its mode and the config that made it, and
/// collects a run's iteration and evaluation records.
pub trait Log: Serialize + serde::de::DeserializeOwned {
    /// What kind of run writes it, for messages ("fine-tuning").
    const KIND: &'static str;
    /// The run's configuration type.
    type Config: PartialEq + Serialize;
    /// One iteration's record.
    type Iteration;
    /// One evaluation's record (after an epoch).
    type Evaluation;
    /// The run's mode.
    fn mode(&self) -> Mode;
    /// The run's configuration.
    fn config(&self) -> &Self::Config;
    /// Whether the run ended (its summary is written).
    fn finished(&self) -> bool;
    /// Whether a loss became NaN or infinite: the mode stopped training there.
    fn diverged(&self) -> bool;
    /// Add an iteration.
    fn push_iteration(&mut self, record: Self::Iteration);
    /// Add an evaluation.
    fn push_evaluation(&mut self, record: Self::Evaluation);
    /// Write the summary of the records so far (`finished`), or clear it.
    fn set_summary(&mut self, finished: bool);
    /// What the iterations so far cost.
    fn costs(&self) -> crate::log::Costs;
    /// Training images per iteration.
    fn batch_size(&self) -> usize;
}

impl Log for RunLog {
    const KIND: &'static str = "fine-tuning";
    type Config = crate::FinetuneConfig;
    type Iteration = crate::log::IterationRecord;
    type Evaluation = crate::log::EpochRecord;
    fn mode(&self) -> Mode {
        self.mode
    }
    fn config(&self) -> &Self::Config {
        &self.config
    }
    fn finished(&self) -> bool {
        self.summary.is_some()
    }
    fn diverged(&self) -> bool {
        self.iterations.iter().any(|i| !i.loss.is_finite())
    }
    fn push_iteration(&mut self, record: Self::Iteration) {
        self.iterations.push(record);
    }
    fn push_evaluation(&mut self, record: Self::Evaluation) {
        self.epochs.push(record);
    }
    fn set_summary(&mut self, finished: bool) {
        self.summary = finished.then(|| self.summarize());
    }
    fn costs(&self) -> crate::log::Costs {
        crate::log::Costs::of(&self.iterations)
    }
    fn batch_size(&self) -> usize {
        self.config.batch_size
    }
}

/// Check that a new run may write its checkpoint at `path` (none there, or `overwrite`), and
/// create its directory.
pub fn prepare_new(path: &Path, overwrite: bool) -> Result<(), TrainError> {
    if path.exists() && !overwrite {
        return Err(TrainError::Checkpoint(format!(
            "{} already holds a checkpoint; continue it with --resume, choose another --out, or \
             pass --overwrite",
            path.display()
        )));
    }
    create_parent(path)
}

/// Create the directory of `path`.
pub fn create_parent(path: &Path) -> Result<(), TrainError> {
    match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e)),
        None => Ok(()),
    }
}

/// The position every mode's checkpoint holds; an error when two modes stopped apart.
pub fn common_position(
    positions: impl IntoIterator<Item = Position>,
    out_dir: &Path,
) -> Result<Position, TrainError> {
    let mut all = positions.into_iter();
    let first = all.next().unwrap_or_default();
    if all.any(|p| p != first) {
        return Err(TrainError::Checkpoint(format!(
            "the modes' checkpoints in {} stopped at different iterations; resume each mode on \
             its own",
            out_dir.display()
        )));
    }
    Ok(first)
}

/// A mode's run restored from its checkpoint.
pub struct Resumed<M, L> {
    /// The model with the saved tensors and parameter ids.
    pub model: M,
    /// The optimizer with the saved state.
    pub optimizer: ModuleOptimizer,
    /// Where the run stopped.
    pub position: Position,
    /// The log so far.
    pub log: L,
}

/// Restore `mode`'s run from `path` into `model` (built as for a new run and already switched
/// to `mode`) and `optimizer` (fresh). Refuses checkpoints of another config or mode.
pub fn resume<M: Module, L: Log>(
    path: &Path,
    mode: Mode,
    config: &L::Config,
    mut model: M,
    optimizer: ModuleOptimizer,
) -> Result<Resumed<M, L>, TrainError> {
    if !path.exists() {
        return Err(TrainError::Checkpoint(format!(
            "cannot resume {mode}: no checkpoint at {} (start without --resume)",
            path.display()
        )));
    }
    let saved = read_as::<L>(path).map_err(|e| match e {
        TrainError::Checkpoint(m) => TrainError::Checkpoint(format!(
            "{m}; start afresh without --resume (and --overwrite), or restore the file"
        )),
        e => e,
    })?;
    if saved.state.log.config() != config {
        return Err(TrainError::Checkpoint(format!(
            "{} was written by a run with other options; resume with the same options (saved: {})",
            path.display(),
            serde_json::to_string(saved.state.log.config()).unwrap_or_default()
        )));
    }
    if saved.state.log.mode() != mode {
        return Err(TrainError::Checkpoint(format!(
            "{} holds a {} run, not {mode}",
            path.display(),
            saved.state.log.mode()
        )));
    }
    saved.load_into(&mut model)?;
    let optimizer_bytes = saved.optimizer(optimizer_limit(parameter_bytes(&model)))?;
    let log = saved.state.log;
    let (model, unmatched) = param_ids::restore(model, &saved.state.param_ids);
    if !unmatched.is_empty() {
        return Err(TrainError::Checkpoint(format!(
            "{}: parameters {unmatched:?} are not in the model",
            path.display()
        )));
    }
    let optimizer = optimizer
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(optimizer_bytes))
        .map_err(|e| {
            TrainError::Checkpoint(format!(
                "{}: unreadable optimizer state ({e:?})",
                path.display()
            ))
        })?;
    Ok(Resumed {
        model,
        optimizer,
        position: saved.state.position,
        log,
    })
}

/// Write a mode's checkpoint (model, optimizer, position, log) to `checkpoint` and its log
/// as pretty JSON to `log_path`, both atomically.
pub fn save_run<M: Module, L: Serialize>(
    checkpoint: &Path,
    log_path: &Path,
    model: &M,
    optimizer: &ModuleOptimizer,
    position: Position,
    log: &L,
) -> Result<(), TrainError> {
    let bytes = optimizer
        .into_bytes()
        .map_err(|e| TrainError::Checkpoint(format!("serialising the optimizer state: {e:?}")))?;
    let state = RunState {
        position,
        param_ids: param_ids::collect(model),
        log,
    };
    save(checkpoint, model, &bytes, &state)?;
    let json = serde_json::to_vec_pretty(log).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
    convbn_zoo::files::write_atomically(log_path, &json)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_walk_epochs_and_checkpoints_fall_at_epochs_and_every_n() {
        let mut p = Position::default();
        let mut walked = Vec::new();
        for _ in 0..7 {
            walked.push((p.epoch, p.step_in_epoch, p.step, p.checkpoint_due(4)));
            p = p.next(3);
        }
        assert_eq!(
            walked,
            [
                (0, 0, 0, true),
                (0, 1, 1, false),
                (0, 2, 2, false),
                (1, 0, 3, true),
                (1, 1, 4, true),
                (1, 2, 5, false),
                (2, 0, 6, true),
            ]
        );
        let last = Position {
            epoch: 1,
            step_in_epoch: 2,
            step: 5,
        };
        assert!(last.ends_epoch(3) && !last.next(3).ends_epoch(3));
        assert_eq!(last.batch(4, 10), 8..10);
        assert_eq!(Position::default().batch(4, 10), 0..4);
        let out = Path::new("/runs");
        assert_eq!(common_position([last, last], out).unwrap(), last);
        assert!(common_position([last, Position::default()], out).is_err());
    }
}
