//! Progress bars for training runs (on stderr; hidden when stderr is not a terminal, where a
//! line is printed now and then instead).

use convbn::Mode;
use convbn_detect::train::log::{DetectEvaluation, DetectIteration, DetectLog};
use convbn_train::log::{EpochRecord, IterationRecord};
use convbn_train::observer::Observer;
use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting the iterations of a run of one or more modes in lock-step, with each mode's
/// latest status after it.
struct ModesBar {
    bar: ProgressBar,
    modes: usize,
    /// Iterations between the lines printed when the bar is hidden.
    every: usize,
    last: Vec<(Mode, String)>,
}

impl ModesBar {
    fn new(modes: usize, every: usize) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} it (eta {eta}) {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Self {
            bar,
            modes,
            every,
            last: Vec::new(),
        }
    }

    fn start(&self, total: usize, done: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
    }

    fn message(&self) -> String {
        self.last
            .iter()
            .map(|(mode, status)| format!("{mode}: {status}"))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// `mode` finished iteration `step` with `status`.
    fn step(&mut self, mode: Mode, step: usize, status: String) {
        match self.last.iter_mut().find(|e| e.0 == mode) {
            Some(e) => e.1 = status,
            None => self.last.push((mode, status)),
        }
        if self.last.first().is_some_and(|e| e.0 == mode) {
            self.bar.set_position(step as u64 + 1);
        }
        self.bar.set_message(self.message());
        // Without a terminal: one line per `every` iterations, once every mode has reported.
        if self.bar.is_hidden()
            && self.last.len() == self.modes
            && self.last.last().is_some_and(|e| e.0 == mode)
            && step.is_multiple_of(self.every)
        {
            eprintln!(
                "iteration {}/{}: {}",
                step + 1,
                self.bar.length().unwrap_or(0),
                self.message()
            );
        }
    }

    fn evaluating(&self, mode: Mode, done: usize, total: usize) {
        self.bar
            .set_message(format!("testing {mode}: {done}/{total} images"));
    }

    /// Print `line` above the bar, or on its own when the bar is hidden.
    fn say(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Fine-tuning: iterations done, per-mode loss and accuracy, images/s and memory.
pub struct TrainProgress {
    bar: ModesBar,
    batch: usize,
}

impl TrainProgress {
    /// A bar for a run of `modes` modes with `batch` images per iteration.
    pub fn new(batch: usize, modes: usize) -> Self {
        Self {
            bar: ModesBar::new(modes, 50),
            batch,
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        self.bar.finish();
    }
}

impl Observer for TrainProgress {
    fn start(&mut self, total: usize, done: usize) {
        self.bar.start(total, done);
    }

    fn step(&mut self, mode: Mode, r: &IterationRecord, _steps_per_epoch: usize) {
        let status = format!(
            "loss {:.3} acc {:.0}% {:.1} img/s {:.0} MB",
            r.loss,
            r.accuracy * 100.0,
            self.batch as f64 * 1e3 / r.ms,
            r.step_peak_bytes as f64 / 1e6
        );
        self.bar.step(mode, r.step, status);
    }

    fn evaluating(&mut self, mode: Mode, done: usize, total: usize) {
        self.bar.evaluating(mode, done, total);
    }

    fn epoch(&mut self, mode: Mode, r: &EpochRecord) {
        self.bar.say(format!(
            "epoch {} {mode}: train loss {:.4} acc {:.2}%, test loss {:.4} acc {:.2}% ({} images)",
            r.epoch + 1,
            r.train_loss,
            r.train_accuracy * 100.0,
            r.test_loss,
            r.test_accuracy * 100.0,
            r.test_images
        ));
    }
}

/// Detection: per-mode loss parts, images/s and memory, and the COCO numbers after each
/// epoch.
pub struct DetectProgress {
    bar: ModesBar,
    batch: usize,
}

impl DetectProgress {
    /// A bar for a run of `modes` modes with `batch` images per iteration.
    pub fn new(batch: usize, modes: usize) -> Self {
        Self {
            bar: ModesBar::new(modes, 25),
            batch,
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        self.bar.finish();
    }
}

impl Observer<DetectLog> for DetectProgress {
    fn start(&mut self, total: usize, done: usize) {
        self.bar.start(total, done);
    }

    fn step(&mut self, mode: Mode, r: &DetectIteration, _steps_per_epoch: usize) {
        let status = format!(
            "loss {:.3} (cls {:.3} box {:.3} ctr {:.3}) {:.1} img/s {:.0} MB",
            r.loss,
            r.classification,
            r.regression,
            r.centerness,
            self.batch as f64 * 1e3 / r.ms,
            r.step_peak_bytes as f64 / 1e6
        );
        self.bar.step(mode, r.step, status);
    }

    fn evaluating(&mut self, mode: Mode, done: usize, total: usize) {
        self.bar.evaluating(mode, done, total);
    }

    fn epoch(&mut self, mode: Mode, r: &DetectEvaluation) {
        let s = &r.stats;
        self.bar.say(format!(
            "epoch {} {mode}: train loss {:.4}; test AP {:.3} AP50 {:.3} AP75 {:.3} AR100 {:.3} \
             ({} images, {} detections)",
            r.epoch + 1,
            r.train_loss,
            s[0],
            s[1],
            s[2],
            s[8],
            r.test_images,
            r.detections
        ));
    }
}
