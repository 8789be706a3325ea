//! What a run reports while it goes: progress bars and logs implement [`Observer`].

use convbn::Mode;

use crate::log::{EpochRecord, IterationRecord};

/// Callbacks of a run; every method defaults to doing nothing.
pub trait Observer {
    /// The run starts (or resumes) with `done` of `total` iterations behind it.
    fn start(&mut self, _total: usize, _done: usize) {}
    /// A mode finished an iteration.
    fn step(&mut self, _mode: Mode, _record: &IterationRecord, _steps_per_epoch: usize) {}
    /// A mode's test-set evaluation has reached `done` of `total` images.
    fn evaluating(&mut self, _mode: Mode, _done: usize, _total: usize) {}
    /// A mode finished an epoch.
    fn epoch(&mut self, _mode: Mode, _record: &EpochRecord) {}
    /// Checkpoints were written after `step` iterations.
    fn checkpoint(&mut self, _step: usize) {}
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}
