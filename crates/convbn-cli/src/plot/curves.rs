//! Training curves of one or more runs: loss per iteration, test accuracy per epoch, time per
//! iteration and per-iteration peak memory, one colour per mode.

use std::path::Path;

use anyhow::Result;
use convbn_train::log::{IterationRecord, RunLog};
use plotters::prelude::*;

use super::lines::panel;
use super::{err, init_font};

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
    l.iterations
        .iter()
        .zip(smooth(&raw, alpha))
        .map(|(r, v)| (r.step as f64, v))
        .collect()
}

/// Draw the 2x2 chart of `logs` into a PNG at `path`.
pub fn draw(logs: &[RunLog], title: &str, path: &Path) -> Result<()> {
    init_font();
    let root = BitMapBackend::new(path, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 26)).map_err(err)?;
    let panels = root.split_evenly((2, 2));
    let series = |f: &dyn Fn(&RunLog) -> Vec<(f64, f64)>| -> Vec<(String, Vec<(f64, f64)>)> {
        logs.iter().map(|l| (l.mode.clone(), f(l))).collect()
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
    panel(
        &panels[0],
        "training loss (EMA)",
        "iteration",
        "cross-entropy",
        &loss,
        false,
    )?;
    panel(
        &panels[1],
        "test accuracy",
        "epoch",
        "accuracy (%)",
        &acc,
        true,
    )?;
    panel(
        &panels[2],
        "time per iteration (EMA)",
        "iteration",
        "ms",
        &ms,
        false,
    )?;
    panel(
        &panels[3],
        "peak memory per iteration",
        "iteration",
        "MB above model + optimizer",
        &mem,
        false,
    )?;
    root.present().map_err(err)?;
    Ok(())
}
