//! The per-mode summary of a lock-step run (fine-tuning or detection): what the task
//! achieved, what each iteration cost, and the cost relative to the Eval run's.

use convbn::Mode;
use convbn_train::checkpoint::Log;
use serde::Serialize;

/// One mode's line of a run's summary; `R` holds the task's results (accuracy, AP).
#[derive(Serialize, Debug)]
pub struct ModeSummary<R> {
    /// Mode.
    pub mode: Mode,
    /// What the task achieved.
    #[serde(flatten)]
    pub result: R,
    /// Median milliseconds per iteration.
    pub median_step_ms: f64,
    /// Training images per second.
    pub images_per_second: f64,
    /// Largest per-iteration heap peak above the resident model and optimizer state.
    pub max_step_peak_bytes: usize,
    /// Largest process heap peak.
    pub max_peak_bytes: usize,
    /// Iteration at which the loss became NaN/inf.
    pub diverged_at: Option<usize>,
    /// Median iteration time relative to Eval's in the same run.
    pub time_vs_eval: Option<f64>,
    /// Per-iteration peak memory relative to Eval's in the same run.
    pub memory_vs_eval: Option<f64>,
}

/// The summary of each log, with `result(log)` and ratios to the Eval run when there is one.
pub fn summarize<L: Log, R>(logs: &[L], result: impl Fn(&L) -> R) -> Vec<ModeSummary<R>> {
    let eval = logs
        .iter()
        .find(|l| l.mode() == Mode::Eval)
        .map(|l| l.costs());
    logs.iter()
        .map(|l| {
            let c = l.costs();
            ModeSummary {
                mode: l.mode(),
                result: result(l),
                median_step_ms: c.median_step_ms,
                images_per_second: c.images_per_second(l.batch_size()),
                max_step_peak_bytes: c.max_step_peak_bytes,
                max_peak_bytes: c.max_peak_bytes,
                diverged_at: c.diverged_at,
                time_vs_eval: eval.map(|e| c.median_step_ms / e.median_step_ms),
                memory_vs_eval: eval
                    .map(|e| c.max_step_peak_bytes as f64 / e.max_step_peak_bytes as f64),
            }
        })
        .collect()
}

impl<R> ModeSummary<R> {
    /// The cost columns of a Markdown table row: ms, vs Eval, peak MB, vs Eval, diverged.
    pub fn cost_cells(&self) -> String {
        format!(
            "{:.1} | {} | {:.1} | {} | {}",
            self.median_step_ms,
            ratio_cell(self.time_vs_eval),
            self.max_step_peak_bytes as f64 / 1e6,
            ratio_cell(self.memory_vs_eval),
            self.diverged_at
                .map_or("no".into(), |s| format!("at iteration {s}")),
        )
    }
}

/// The headers of [`ModeSummary::cost_cells`] and their alignment row.
pub const COST_HEADERS: (&str, &str) = (
    "ms / iteration | vs Eval | peak MB / iteration | vs Eval | diverged",
    "---:|---:|---:|---:|---",
);

/// A ratio as a table cell (`-` when there is none).
pub fn ratio_cell(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.3}x"))
}
