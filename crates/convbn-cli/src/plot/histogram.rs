//! A histogram of positive values on a log10 axis (the paper's Figure 2a).

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::lines::legend;
use super::{color, err, init_font, png};

/// Draw the histogram of `log10(values)` (positive values only) with `bins` bins.
pub fn draw_log10(
    values: &[f64],
    bins: usize,
    title: &str,
    x_desc: &str,
    path: &Path,
) -> Result<()> {
    init_font();
    let logs: Vec<f64> = values
        .iter()
        .filter(|v| **v > 0.0 && v.is_finite())
        .map(|v| v.log10())
        .collect();
    let (lo, hi) = logs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo > hi {
        (-1.0, 1.0)
    } else {
        (
            (lo * 2.0).floor() / 2.0,
            ((hi * 2.0).ceil() / 2.0).max(lo.floor() + 0.5),
        )
    };
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in &logs {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1) as f64 * 1.08;
    png(path, (1000, 650), None, |root| {
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("channels")
            .x_label_formatter(&|v| format!("1e{v:.1}"))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        let c = color(0);
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &n)| {
                let x = lo + i as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, n as f64)], c.filled())
            }))
            .map_err(err)?;
        // The line s = 1: channels left of it get a larger learning rate in Deploy mode.
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (0.0, top)],
                color(1).stroke_width(2),
            ))
            .map_err(err)?
            .label("|s| = 1: left of it, Deploy's per-channel lr factor 1/s^2 > 1")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color(1).stroke_width(3)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}
