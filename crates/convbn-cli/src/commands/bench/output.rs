//! Rows of `convbn bench`, their ratios, and how they are printed and saved.

use std::path::Path;

use anyhow::{Context, Result};
use convbn::machine::Machine;
use convbn::measure::median;
use serde::{Deserialize, Serialize};

use super::step::Workload;
use super::{BenchFormat, pytorch, worker};
use crate::commands::modes::human_bytes;
use crate::plot;

/// Which implementation a row measures.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// This project (burn, default backend).
    Convbn,
    /// PyTorch eager on CPU (`bench/pytorch_reference.py`).
    Pytorch,
}

/// One (framework, model, mode, batch, size) measurement.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Row {
    /// `convbn` or `pytorch`.
    pub framework: Framework,
    /// Architecture name.
    pub model: String,
    /// Mode of every ConvBN block.
    pub mode: String,
    /// Batch size.
    pub batch: usize,
    /// Input height and width.
    pub size: usize,
    /// Ours: heap bytes held after forward, before backward (counting allocator). PyTorch:
    /// bytes autograd saved for backward, parameters excluded.
    pub retained_bytes: usize,
    /// Ours: heap high-water mark of the step above what was held before it. PyTorch: null
    /// (its CPU allocator has no such counter).
    pub peak_bytes: Option<usize>,
    /// Peak RSS of the measuring process after the model was built (includes the model).
    pub peak_rss_bytes: u64,
    /// Median wall-clock milliseconds of forward + backward.
    pub step_ms_median: f64,
    /// Every timed step, in order.
    pub step_ms: Vec<f64>,
    /// Operations of the step's convolutions (forward and the gradients backward computes;
    /// `convbn::flops`), in GFLOP: the same for every mode and for PyTorch.
    #[serde(default)]
    pub conv_gflop: f64,
}

impl Row {
    /// A row with its times; memory is filled by [`with_ours`](Self::with_ours) or
    /// [`with_pytorch`](Self::with_pytorch).
    pub fn new(framework: Framework, w: Workload, mode: &str, step_ms: Vec<f64>) -> Self {
        Self {
            framework,
            model: w.arch.name().to_string(),
            mode: mode.to_string(),
            batch: w.batch,
            size: w.size,
            retained_bytes: 0,
            peak_bytes: None,
            peak_rss_bytes: 0,
            step_ms_median: median(&step_ms),
            step_ms,
            conv_gflop: 0.0,
        }
    }

    /// The step's convolution operations, in GFLOP.
    pub fn with_gflop(mut self, gflop: f64) -> Self {
        self.conv_gflop = gflop;
        self
    }

    /// Convolution GFLOP per second of the median step.
    pub fn gflops(&self) -> f64 {
        self.conv_gflop / (self.step_ms_median / 1e3)
    }

    /// Fill in our memory figures.
    pub fn with_ours(mut self, m: worker::Memory) -> Self {
        self.retained_bytes = m.retained_bytes;
        self.peak_bytes = Some(m.peak_bytes);
        self.peak_rss_bytes = m.peak_rss_bytes;
        self
    }

    /// Fill in PyTorch's memory figures.
    pub fn with_pytorch(mut self, m: pytorch::Memory) -> Self {
        self.retained_bytes = m.saved_bytes;
        self.peak_rss_bytes = m.peak_rss_bytes;
        self
    }

    fn same_workload(&self, other: &Row) -> bool {
        self.model == other.model && self.batch == other.batch && self.size == other.size
    }
}

/// The row of `framework` and `mode` on the same workload as `like`.
fn find<'a>(rows: &'a [Row], like: &Row, framework: Framework, mode: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.framework == framework && r.mode == mode && r.same_workload(like))
}

/// Ratio lines for one workload: Tune against Eval and Deploy, ours against PyTorch.
fn ratios(rows: &[Row], first: &Row) -> Vec<String> {
    let mut lines = Vec::new();
    let ours = |mode| find(rows, first, Framework::Convbn, mode);
    let theirs = |mode| find(rows, first, Framework::Pytorch, mode);
    if let Some(tune) = ours("tune") {
        for other in ["eval", "deploy"] {
            if let Some(o) = ours(other) {
                lines.push(format!(
                    "  tune/{other}: retained {:.3}x, peak {:.3}x, peak RSS {:.3}x, time {:.3}x",
                    tune.retained_bytes as f64 / o.retained_bytes as f64,
                    tune.peak_bytes.unwrap_or(0) as f64 / o.peak_bytes.unwrap_or(1).max(1) as f64,
                    tune.peak_rss_bytes as f64 / o.peak_rss_bytes.max(1) as f64,
                    tune.step_ms_median / o.step_ms_median
                ));
            }
        }
    }
    for mode in ["train", "eval", "tune", "deploy"] {
        if let (Some(a), Some(b)) = (ours(mode), theirs(mode)) {
            lines.push(format!(
                "  ours/PyTorch {mode}: retained {:.3}x, peak RSS {:.3}x, time {:.3}x",
                a.retained_bytes as f64 / b.retained_bytes.max(1) as f64,
                a.peak_rss_bytes as f64 / b.peak_rss_bytes.max(1) as f64,
                a.step_ms_median / b.step_ms_median
            ));
        }
    }
    lines
}

/// Print `rows` on stdout in `format`.
pub fn print(rows: &[Row], format: BenchFormat) -> Result<()> {
    match format {
        BenchFormat::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        BenchFormat::Csv => {
            println!(
                "framework,model,mode,batch,size,retained_bytes,peak_bytes,peak_rss_bytes,step_ms_median,conv_gflop"
            );
            for r in rows {
                println!(
                    "{},{},{},{},{},{},{},{},{:.3},{:.3}",
                    serde_json::to_value(r.framework)?
                        .as_str()
                        .unwrap_or_default(),
                    r.model,
                    r.mode,
                    r.batch,
                    r.size,
                    r.retained_bytes,
                    r.peak_bytes.map(|p| p.to_string()).unwrap_or_default(),
                    r.peak_rss_bytes,
                    r.step_ms_median,
                    r.conv_gflop
                );
            }
        }
        BenchFormat::Table => {
            let mut seen: Vec<&Row> = Vec::new();
            for r in rows {
                if seen.iter().any(|s| s.same_workload(r)) {
                    continue;
                }
                seen.push(r);
                println!(
                    "{} batch {} {}x{} ({:.1} GFLOP of convolutions per step):",
                    r.model, r.batch, r.size, r.size, r.conv_gflop
                );
                println!(
                    "  {:<8} {:<7} {:>12} {:>12} {:>12} {:>11} {:>8}",
                    "", "mode", "retained", "peak heap", "peak RSS", "step (med)", "GFLOP/s"
                );
                for x in rows.iter().filter(|x| x.same_workload(r)) {
                    let who = match x.framework {
                        Framework::Convbn => "convbn",
                        Framework::Pytorch => "PyTorch",
                    };
                    println!(
                        "  {:<8} {:<7} {:>12} {:>12} {:>12} {:>8.1} ms {:>8.1}",
                        who,
                        x.mode,
                        human_bytes(x.retained_bytes),
                        x.peak_bytes.map(human_bytes).unwrap_or_else(|| "-".into()),
                        human_bytes(x.peak_rss_bytes as usize),
                        x.step_ms_median,
                        x.gflops()
                    );
                }
                for line in ratios(rows, r) {
                    println!("{line}");
                }
            }
        }
    }
    Ok(())
}

/// Write `bench.json`, `machine.json` (CPU runs) and one chart per model into `dir`.
pub fn save(rows: &[Row], machine: Option<&Machine>, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(rows)?;
    convbn_zoo::files::write_atomically(&dir.join("bench.json"), json.as_bytes())?;
    if let Some(machine) = machine {
        let json = serde_json::to_string_pretty(machine)?;
        convbn_zoo::files::write_atomically(&dir.join("machine.json"), json.as_bytes())?;
    }
    let mut models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
    models.dedup();
    for model in models {
        let points: Vec<plot::bench::Point> = rows
            .iter()
            .filter(|r| r.model == model)
            .map(|r| plot::bench::Point {
                series: match r.framework {
                    Framework::Convbn => r.mode.clone(),
                    Framework::Pytorch => format!("PyTorch {}", r.mode),
                },
                batch: r.batch,
                size: r.size,
                retained_bytes: r.retained_bytes,
                step_ms: r.step_ms_median,
            })
            .collect();
        plot::bench::draw(model, &points, &dir.join(format!("bench_{model}.png")))?;
    }
    Ok(())
}
