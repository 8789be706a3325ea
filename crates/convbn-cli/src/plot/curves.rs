//! Training curves of one or more runs: loss per iteration, test accuracy per epoch, time per
//! iteration and per-iteration peak memory, one colour per mode.

use std::path::Path;

use anyhow::Result;
use convbn_train::log::{IterationRecord, RunLog};
use plotters::prelude::*;

use super::lines::panel;
use super::{err, init_font, png};

/// Exponential moving average, for readable noisy curves.
fn smooth(values: &[f64], alpha: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    let mut acc = None;
    for &v in values {
        let next = match acc {
            None => v,
            Some(a) if v.is_finite() => a + alpha * (v - a),
            Some(_) => f64::NAN,
        };
        acc = Some(next);
        out.push(next);
    }
    out
}

/// `(iteration, EMA of field)` over a log's iterations.
fn smoothed(l: &RunLog, alpha: f64, field: fn(&IterationRecord) -> f64) -> Vec<(f64, f64)> {
    let raw: Vec<f64> = l.iterations.iter().map(field).collect();
    let steps: Vec<usize> = l.iterations.iter().map(|r| r.step).collect();
    smoothed_points(&steps, &raw, alpha)
}

/// One panel of a 2x2 chart: caption, axis descriptions, named series, whether to mark points.
pub type Panel<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Vec<(String, Vec<(f64, f64)>)>,
    bool,
);

/// Draw four panels in a 2x2 grid under `title` into a PNG at `path`.
pub fn grid(title: &str, path: &Path, panels: [Panel<'_>; 4]) -> Result<()> {
    init_font();
    png(path, (1400, 1000), None, |root| {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(title, ("sans-serif", 26)).map_err(err)?;
        for (area, (caption, x, y, data, points)) in root.split_evenly((2, 2)).iter().zip(panels) {
            panel(area, caption, x, y, &data, points)?;
        }
        Ok(())
    })
}

/// Exponential moving average of `values` along `steps`, as points.
pub fn smoothed_points(steps: &[usize], values: &[f64], alpha: f64) -> Vec<(f64, f64)> {
    steps
        .iter()
        .zip(smooth(values, alpha))
        .map(|(&s, v)| (s as f64, v))
        .collect()
}

/// Draw the 2x2 chart of `logs` into a PNG at `path`.
pub fn draw(logs: &[RunLog], title: &str, path: &Path) -> Result<()> {
    let series = |f: &dyn Fn(&RunLog) -> Vec<(f64, f64)>| -> Vec<(String, Vec<(f64, f64)>)> {
        logs.iter().map(|l| (l.mode.to_string(), f(l))).collect()
    };
    let alpha = 0.05;
    let loss = series(&|l| smoothed(l, alpha, |r| r.loss));
    let acc = series(&|l| {
        l.epochs
            .iter()
            .map(|e| ((e.epoch + 1) as f64, 100.0 * e.test_accuracy))
            .collect()
    });
    let ms = series(&|l| smoothed(l, alpha, |r| r.ms));
    let mem = series(&|l| {
        l.iterations
            .iter()
            .map(|r| (r.step as f64, r.step_peak_bytes as f64 / 1e6))
            .collect()
    });
    grid(
        title,
        path,
        [
            (
                "training loss (EMA)",
                "iteration",
                "cross-entropy",
                loss,
                false,
            ),
            ("test accuracy", "epoch", "accuracy (%)", acc, true),
            ("time per iteration (EMA)", "iteration", "ms", ms, false),
            (
                "peak memory per iteration",
                "iteration",
                "MB above model + optimizer",
                mem,
                false,
            ),
        ],
    )
}
