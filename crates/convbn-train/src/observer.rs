//! What a run reports while it goes: progress bars and logs implement [`Observer`].

use convbn::Mode;

use crate::checkpoint::Log;
use crate::log::RunLog;

/// Callbacks of a lock-step run whose log is `L` (fine-tuning's [`RunLog`] by default); every
/// method defaults to doing nothing.
pub trait Observer<L: Log = RunLog> {
    /// The run starts (or resumes) with `done` of `total` iterations behind it.
    fn start(&mut self, _total: usize, _done: usize) {}
    /// A mode finished an iteration (epochs have `steps_per_epoch` iterations).
    fn step(&mut self, _mode: Mode, _record: &L::Iteration, _steps_per_epoch: usize) {}
    /// A mode's test-set evaluation has reached `done` of `total` images.
    fn evaluating(&mut self, _mode: Mode, _done: usize, _total: usize) {}
    /// A mode finished an epoch and its evaluation.
    fn epoch(&mut self, _mode: Mode, _record: &L::Evaluation) {}
    /// Checkpoints were written after `step` iterations.
    fn checkpoint(&mut self, _step: usize) {}
}

/// An observer that ignores everything.
pub struct Silent;

impl<L: Log> Observer<L> for Silent {}
