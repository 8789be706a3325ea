//! Detection training curves: total loss per iteration, test AP and AP50 per epoch, time per
//! iteration and per-iteration peak memory, one colour per mode.

use std::path::Path;

use anyhow::Result;
use convbn_detect::train::log::{DetectIteration, DetectLog};

use super::curves::{grid, smoothed_points};

/// Draw the 2x2 chart of `logs` into a PNG at `path`.
pub fn draw(logs: &[DetectLog], title: &str, path: &Path) -> Result<()> {
    let alpha = 0.05;
    let smoothed = |field: fn(&DetectIteration) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        logs.iter()
            .map(|l| {
                let steps: Vec<usize> = l.iterations.iter().map(|r| r.step).collect();
                let values: Vec<f64> = l.iterations.iter().map(field).collect();
                (l.mode.to_string(), smoothed_points(&steps, &values, alpha))
            })
            .collect()
    };
    let ap: Vec<(String, Vec<(f64, f64)>)> = logs
        .iter()
        .flat_map(|l| {
            [(0, "AP"), (1, "AP50")].map(|(k, name)| {
                (
                    format!("{} {name}", l.mode),
                    l.evaluations
                        .iter()
                        .map(|e| ((e.epoch + 1) as f64, e.stats[k]))
                        .collect(),
                )
            })
        })
        .collect();
    grid(
        title,
        path,
        [
            (
                "training loss (EMA)",
                "iteration",
                "focal + GIoU + centerness",
                smoothed(|r| r.loss),
                false,
            ),
            ("test AP@[.5:.95] and AP50", "epoch", "AP", ap, true),
            (
                "time per iteration (EMA)",
                "iteration",
                "ms",
                smoothed(|r| r.ms),
                false,
            ),
            (
                "peak memory per iteration",
                "iteration",
                "MB above model + optimizer",
                smoothed(|r| r.step_peak_bytes as f64 / 1e6),
                false,
            ),
        ],
    )
}
