//! A run's learning-rate schedule as burn's scheduler.

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};

use crate::Schedule;

/// A run's [`Schedule`] as burn's learning-rate scheduler: the learner calls
/// [`LrScheduler::step`] once per optimizer step and gets
/// `schedule.lr(base, step, total, step / steps_per_epoch)`.
#[derive(Clone, Debug)]
pub struct ScheduleLr {
    schedule: Schedule,
    base: f64,
    total: usize,
    steps_per_epoch: usize,
    /// Steps taken so far.
    step: usize,
}

impl ScheduleLr {
    /// `total` optimizer steps, `steps_per_epoch` of them per epoch.
    pub fn new(schedule: Schedule, base: f64, total: usize, steps_per_epoch: usize) -> Self {
        Self {
            schedule,
            base,
            total,
            steps_per_epoch: steps_per_epoch.max(1),
            step: 0,
        }
    }
}

impl ScheduleLr {
    /// The scheduler of a run of `epochs` over `len` images in global batches of `batch`
    /// (each epoch's last partial batch dropped, as [`super::RunOrder`] does).
    pub fn for_run(
        schedule: &Schedule,
        base: f64,
        epochs: usize,
        len: usize,
        batch: usize,
    ) -> Self {
        let per_epoch = len / batch.max(1);
        Self::new(schedule.clone(), base, per_epoch * epochs, per_epoch)
    }

    /// Optimizer steps of the whole run.
    pub fn total(&self) -> usize {
        self.total
    }
}

impl LrScheduler for ScheduleLr {
    fn step(&mut self) -> LearningRate {
        let step = self.step;
        self.step += 1;
        self.schedule
            .lr(self.base, step, self.total, step / self.steps_per_epoch)
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar("step", self.step as u64)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(step) = record.scalar::<u64>("step") {
            self.step = step as usize;
        }
    }
}
