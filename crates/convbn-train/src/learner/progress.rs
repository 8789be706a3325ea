//! burn's learner reports progress through a renderer; its plain one prints every update to
//! stdout, which would mix with the commands' own output (`--format json`). This one writes a
//! line to stderr at each tenth of a split.

use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};

/// Progress of burn's learner on stderr: `learner: train 640/1280`, ten lines per split.
#[derive(Default)]
pub struct StderrProgress {
    split: String,
    total: usize,
    shown: usize,
}

impl StderrProgress {
    fn update(&mut self, done: usize) {
        let tenth = (done * 10).checked_div(self.total).unwrap_or(10);
        if tenth > self.shown {
            self.shown = tenth;
            eprintln!("learner: {} {done}/{}", self.split, self.total);
        }
    }

    fn start(&mut self, split: &str, total: usize) {
        self.split = split.to_string();
        self.total = total;
        self.shown = 0;
    }
}

impl TrainingProgressLogger for StderrProgress {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}
    fn update_epoch(&mut self, _: usize) {}
    fn start_split(&mut self, split: &str, total_items: usize) {
        StderrProgress::start(self, split, total_items);
    }
    fn update_split(&mut self, items_processed: usize) {
        self.update(items_processed);
    }
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _: String) {}
}

impl EvaluationProgressLogger for StderrProgress {
    fn start_global_progress(&mut self, _: usize) {}
    fn start_test(&mut self, name: &str, total_items: usize) {
        StderrProgress::start(self, name, total_items);
    }
    fn update_test_progress(&mut self, items_processed: usize) {
        self.update(items_processed);
    }
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _: String) {}
}

impl MetricsRendererTraining for StderrProgress {
    fn update_train(&mut self, _: MetricState) {}
    fn update_valid(&mut self, _: MetricState) {}
}

impl MetricsRendererEvaluation for StderrProgress {
    fn update_test(&mut self, _: EvaluationName, _: MetricState) {}
}

impl MetricsRenderer for StderrProgress {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _: MetricDefinition) {}
}
