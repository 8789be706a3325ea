//! What a detection run reports while it goes: progress bars and logs implement
//! [`DetectObserver`].

use convbn::Mode;

use crate::train::log::{DetectEvaluation, DetectIteration};

/// Callbacks of a run; every method defaults to doing nothing.
pub trait DetectObserver {
    /// The run starts (or resumes) with `done` of `total` iterations behind it.
    fn start(&mut self, _total: usize, _done: usize) {}
    /// A mode finished an iteration.
    fn step(&mut self, _mode: Mode, _record: &DetectIteration) {}
    /// A mode's evaluation has reached `done` of `total` test images.
    fn evaluating(&mut self, _mode: Mode, _done: usize, _total: usize) {}
    /// A mode finished an epoch and its evaluation.
    fn epoch(&mut self, _mode: Mode, _record: &DetectEvaluation) {}
    /// Checkpoints were written after `step` iterations.
    fn checkpoint(&mut self, _step: usize) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl DetectObserver for Quiet {}
