//! Run checkpoints: one `.safetensors` file per mode holding the model's tensors (burn paths),
//! the optimizer's state (burnpack bytes, tensor `__optimizer__`) and, in the metadata, the run
//! state as JSON: config, position, parameter ids and the log so far. Written to a temporary
//! file and renamed, so an interrupted write never replaces a good checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::Module;
use convbn_zoo::checkpoint::Checkpoint;
use convbn_zoo::load::{LoadOptions, Naming, load, to_checkpoint};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::log::RunLog;

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

/// The non-tensor state of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState {
    /// The next iteration.
    pub position: Position,
    /// Parameter ids by path (the optimizer state is keyed by them).
    pub param_ids: BTreeMap<String, u64>,
    /// The log so far (it holds the config and the mode).
    pub log: RunLog,
}

/// Write `model`, the optimizer bytes and `state` to `path` atomically.
pub fn save<M: Module>(
    path: &Path,
    model: &M,
    optimizer: &[u8],
    state: &RunState,
) -> Result<(), TrainError> {
    let fail = |why: String| TrainError::Checkpoint(format!("writing {}: {why}", path.display()));
    let json = serde_json::to_string(state).map_err(|e| fail(e.to_string()))?;
    let bytes = to_checkpoint(model, &Naming::burn())
        .to_safetensors_bytes(
            &[(OPTIMIZER, optimizer)],
            Some(HashMap::from([(STATE.to_string(), json)])),
        )
        .map_err(fail)?;
    convbn_zoo::assets::write_atomically(path, &bytes)?;
    Ok(())
}

/// A checkpoint read back: the model's tensors, the optimizer bytes, the run state.
pub struct Saved {
    /// Model tensors by burn path.
    pub tensors: Checkpoint,
    /// Optimizer state (burnpack bytes).
    pub optimizer: Vec<u8>,
    /// Run state.
    pub state: RunState,
}

/// Read a checkpoint written by [`save`].
pub fn read(path: &Path) -> Result<Saved, TrainError> {
    let corrupt = |why: String| {
        TrainError::Checkpoint(format!(
            "{} is not a usable checkpoint ({why}); start afresh without --resume, or restore it",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE))
        .ok_or_else(|| corrupt("no run state".into()))?;
    let state: RunState = serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let optimizer = st
        .tensor(OPTIMIZER)
        .map_err(|_| corrupt("no optimizer state".into()))?
        .data()
        .to_vec();
    let tensors = Checkpoint::from_safetensors_bytes(&bytes).map_err(corrupt)?;
    Ok(Saved {
        tensors,
        optimizer,
        state,
    })
}

/// Load saved tensors into `model` strictly (same architecture, classes and mode).
pub fn load_model<M: Module>(model: &mut M, tensors: &Checkpoint) -> Result<(), TrainError> {
    load(model, tensors, &Naming::burn(), LoadOptions::default())?;
    Ok(())
}
