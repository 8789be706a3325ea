//! A progress bar for training runs (on stderr; hidden when stderr is not a terminal).

use convbn::Mode;
use convbn_detect::train::log::{DetectEvaluation, DetectIteration};
use convbn_detect::train::observer::DetectObserver;
use convbn_train::log::{EpochRecord, IterationRecord};
use convbn_train::observer::Observer;
use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting training iterations, with a message after it.
fn iteration_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} it (eta {eta}) {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Print `line` above the bar, or on its own when the bar is hidden (no terminal).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Shows iterations done, per-mode loss and accuracy, images/s and memory.
pub struct TrainProgress {
    bar: ProgressBar,
    batch: usize,
    last: Vec<(Mode, f64, f64, f64, usize)>,
}

impl TrainProgress {
    /// A bar for a run with `batch` images per iteration.
    pub fn new(batch: usize) -> Self {
        Self {
            bar: iteration_bar(),
            batch,
            last: Vec::new(),
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn message(&self) -> String {
        self.last
            .iter()
            .map(|(mode, loss, acc, ms, peak)| {
                format!(
                    "{mode}: loss {loss:.3} acc {:.0}% {:.1} img/s {:.0} MB",
                    acc * 100.0,
                    self.batch as f64 * 1e3 / ms,
                    *peak as f64 / 1e6
                )
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

impl Observer for TrainProgress {
    fn start(&mut self, total: usize, done: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
    }

    fn step(&mut self, mode: Mode, r: &IterationRecord, _steps_per_epoch: usize) {
        let entry = (mode, r.loss, r.accuracy, r.ms, r.step_peak_bytes);
        match self.last.iter_mut().find(|e| e.0 == mode) {
            Some(e) => *e = entry,
            None => self.last.push(entry),
        }
        if self.last.first().is_some_and(|e| e.0 == mode) {
            self.bar.set_position(r.step as u64 + 1);
        }
        self.bar.set_message(self.message());
        // Without a terminal (logs, CI) the bar is hidden: print a line now and then instead.
        if self.bar.is_hidden()
            && self.last.last().is_some_and(|e| e.0 == mode)
            && r.step.is_multiple_of(50)
        {
            eprintln!(
                "iteration {}/{}: {}",
                r.step + 1,
                self.bar.length().unwrap_or(0),
                self.message()
            );
        }
    }

    fn evaluating(&mut self, mode: Mode, done: usize, total: usize) {
        self.bar
            .set_message(format!("testing {mode}: {done}/{total} images"));
    }

    fn epoch(&mut self, mode: Mode, r: &EpochRecord) {
        let line = format!(
            "epoch {} {mode}: train loss {:.4} acc {:.2}%, test loss {:.4} acc {:.2}% ({} images)",
            r.epoch + 1,
            r.train_loss,
            r.train_accuracy * 100.0,
            r.test_loss,
            r.test_accuracy * 100.0,
            r.test_images
        );
        say(&self.bar, line);
    }
}

/// Progress of detection training: per-mode loss parts, images/s and memory, and the COCO
/// numbers after each epoch.
pub struct DetectProgress {
    bar: ProgressBar,
    batch: usize,
    modes: usize,
    last: Vec<(Mode, DetectIteration)>,
}

impl DetectProgress {
    /// A bar for a run of `modes` modes with `batch` images per iteration.
    pub fn new(batch: usize, modes: usize) -> Self {
        Self {
            bar: iteration_bar(),
            batch,
            modes,
            last: Vec::new(),
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn message(&self) -> String {
        self.last
            .iter()
            .map(|(mode, r)| {
                format!(
                    "{mode}: loss {:.3} (cls {:.3} box {:.3} ctr {:.3}) {:.1} img/s {:.0} MB",
                    r.loss,
                    r.classification,
                    r.regression,
                    r.centerness,
                    self.batch as f64 * 1e3 / r.ms,
                    r.step_peak_bytes as f64 / 1e6
                )
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

impl DetectObserver for DetectProgress {
    fn start(&mut self, total: usize, done: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
    }

    fn step(&mut self, mode: Mode, r: &DetectIteration) {
        match self.last.iter_mut().find(|e| e.0 == mode) {
            Some(e) => e.1 = r.clone(),
            None => self.last.push((mode, r.clone())),
        }
        if self.last.first().is_some_and(|e| e.0 == mode) {
            self.bar.set_position(r.step as u64 + 1);
        }
        self.bar.set_message(self.message());
        // Without a terminal: one line per 25 iterations, once every mode has reported.
        if self.bar.is_hidden()
            && self.last.len() == self.modes
            && self.last.last().is_some_and(|e| e.0 == mode)
            && r.step.is_multiple_of(25)
        {
            eprintln!(
                "iteration {}/{}: {}",
                r.step + 1,
                self.bar.length().unwrap_or(0),
                self.message()
            );
        }
    }

    fn evaluating(&mut self, mode: Mode, done: usize, total: usize) {
        self.bar
            .set_message(format!("testing {mode}: {done}/{total} images"));
    }

    fn epoch(&mut self, mode: Mode, r: &DetectEvaluation) {
        let s = &r.stats;
        say(
            &self.bar,
            format!(
                "epoch {} {mode}: train loss {:.4}; test AP {:.3} AP50 {:.3} AP75 {:.3} AR100 \
                 {:.3} ({} images, {} detections)",
                r.epoch + 1,
                r.train_loss,
                s[0],
                s[1],
                s[2],
                s[8],
                r.test_images,
                r.detections
            ),
        );
    }
}
