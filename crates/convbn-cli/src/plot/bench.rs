//! `convbn bench` charts (the paper's Figure 3): retained memory and step time against batch
//! size and against input size, one line per (framework, mode).

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::lines::panel;
use super::{err, init_font, png};

/// One measured step of one series (a framework's mode) of a model.
pub struct Point {
    /// The line it belongs to (`tune`, `PyTorch tune`).
    pub series: String,
    /// Batch size.
    pub batch: usize,
    /// Input pixels per side.
    pub size: usize,
    /// Bytes retained after forward.
    pub retained_bytes: usize,
    /// Median step milliseconds.
    pub step_ms: f64,
}

/// One line per series: points `(x, y)` for points passing `keep`.
fn series(
    points: &[Point],
    keep: impl Fn(&Point) -> bool,
    x: impl Fn(&Point) -> f64,
    y: impl Fn(&Point) -> f64,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in points.iter().filter(|r| keep(r)) {
        let name = r.series.clone();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, points)) => points.push((x(r), y(r))),
            None => out.push((name, vec![(x(r), y(r))])),
        }
    }
    for (_, points) in &mut out {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Draw the 2x2 chart of one model's points into a PNG at `path`.
pub fn draw(model: &str, rows: &[Point], path: &Path) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    init_font();
    let max_size = rows.iter().map(|r| r.size).max().unwrap_or(0);
    let max_batch = rows.iter().map(|r| r.batch).max().unwrap_or(0);
    png(path, (1400, 1000), None, |root| {
        root.fill(&WHITE).map_err(err)?;
        let title = format!("{model}: one training step (forward + backward), by mode");
        let root = root.titled(&title, ("sans-serif", 26)).map_err(err)?;
        let panels = root.split_evenly((2, 2));
        let mb = |r: &Point| r.retained_bytes as f64 / 1e6;
        let ms = |r: &Point| r.step_ms;
        let at_size = |r: &Point| r.size == max_size;
        let at_batch = |r: &Point| r.batch == max_batch;
        let batch = |r: &Point| r.batch as f64;
        let size = |r: &Point| r.size as f64;
        panel(
            &panels[0],
            &format!("memory kept for backward, {max_size}x{max_size}"),
            "batch size",
            "MB retained after forward",
            &series(rows, at_size, batch, mb),
            true,
        )?;
        panel(
            &panels[1],
            &format!("step time, {max_size}x{max_size}"),
            "batch size",
            "ms (median)",
            &series(rows, at_size, batch, ms),
            true,
        )?;
        panel(
            &panels[2],
            &format!("memory kept for backward, batch {max_batch}"),
            "input size (pixels per side)",
            "MB retained after forward",
            &series(rows, at_batch, size, mb),
            true,
        )?;
        panel(
            &panels[3],
            &format!("step time, batch {max_batch}"),
            "input size (pixels per side)",
            "ms (median)",
            &series(rows, at_batch, size, ms),
            true,
        )?;
        Ok(())
    })
}
