//! `convbn bench-block`: memory and time of a training step through a ConvBN+ReLU stack.

use anyhow::{Context, Result, bail};
use burn::tensor::{Distribution, Tensor};
use convbn::measure::{measure_step, median};
use convbn::{ConvBnReluStack, Mode};
use serde::Serialize;

use crate::budget;
use crate::commands::Format;
use crate::commands::modes::human_bytes;

/// Workload to measure.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Mode of every block: train, eval, deploy or tune.
    #[arg(long, default_value = "tune")]
    mode: Mode,
    /// Channels of every block.
    #[arg(long, default_value_t = 64)]
    channels: usize,
    /// Input height and width.
    #[arg(long, default_value_t = 56)]
    size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Number of ConvBN+ReLU blocks.
    #[arg(long, default_value_t = 4)]
    blocks: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

/// One measurement, as printed with `--format json`.
#[derive(Serialize, Debug)]
pub struct Report {
    mode: Mode,
    channels: usize,
    size: usize,
    batch: usize,
    blocks: usize,
    steps: usize,
    retained_bytes: usize,
    peak_bytes: usize,
    step_ms_median: f64,
    step_ms: Vec<f64>,
}

/// Run the benchmark and print one report.
pub fn run(args: Args) -> Result<()> {
    if args.steps == 0 || args.blocks == 0 || args.batch == 0 || args.size == 0 {
        bail!("--steps, --blocks, --batch and --size must be positive");
    }
    if !convbn::memory::is_counting() {
        bail!("the counting allocator is not installed; memory cannot be measured");
    }
    // Eval keeps X and the normalised output of every block; backward adds a few maps more.
    let activations = budget::product(&[args.batch, args.channels, args.size, args.size, 4]);
    let parameters = budget::product(&[args.channels, args.channels, 9, args.blocks, 4 * 4]);
    let needed = activations
        .and_then(|a| a.checked_mul(2 * args.blocks as u64 + 4))
        .zip(parameters)
        .and_then(|(a, p)| a.checked_add(p));
    budget::ensure_fits(
        &format!(
            "bench-block at batch {}, {} channels, {}x{}, {} blocks",
            args.batch, args.channels, args.size, args.size, args.blocks
        ),
        needed,
    )?;
    let device = args.device.training_device(crate::device::Precision::F32)?;
    let model = ConvBnReluStack::new(args.channels, args.blocks, args.mode, &device)
        .context("building the block stack")?;
    let shape = [args.batch, args.channels, args.size, args.size];
    let input = || Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let step = || measure_step(input(), |x| model.forward(x));
    step()?; // warm-up: thread pools, allocator caches, lazy initialisation
    let costs = (0..args.steps)
        .map(|_| step())
        .collect::<convbn::Result<Vec<_>>>()?;
    let step_ms: Vec<f64> = costs.iter().map(|c| c.step_ms).collect();
    let report = Report {
        mode: args.mode,
        channels: args.channels,
        size: args.size,
        batch: args.batch,
        blocks: args.blocks,
        steps: args.steps,
        retained_bytes: costs.iter().map(|c| c.retained_bytes).min().unwrap_or(0),
        peak_bytes: costs.iter().map(|c| c.peak_bytes).max().unwrap_or(0),
        step_ms_median: median(&step_ms),
        step_ms,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Table => println!(
            "mode {:<6} blocks {} x {}ch {}x{} batch {}: retained {} ({} B), peak {} ({} B), \
             step {:.1} ms (median of {})",
            report.mode,
            report.blocks,
            report.channels,
            report.size,
            report.size,
            report.batch,
            human_bytes(report.retained_bytes),
            report.retained_bytes,
            human_bytes(report.peak_bytes),
            report.peak_bytes,
            report.step_ms_median,
            report.steps
        ),
    }
    Ok(())
}
