//! `convbn bench-worker` (hidden): the memory of one (model, mode, batch, size) measured in a
//! process of its own, so that no other mode's peak or cached buffers can hide it.

use anyhow::{Context, Result, bail};
use convbn::Mode;
use convbn_zoo::Architecture;
use serde::{Deserialize, Serialize};

use super::rss;
use super::step::{Workload, build, step};

/// What the parent `convbn bench` asks for.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Architecture.
    #[arg(long)]
    model: Architecture,
    /// Mode of every block.
    #[arg(long)]
    mode: Mode,
    /// Batch size.
    #[arg(long)]
    batch: usize,
    /// Input height and width.
    #[arg(long)]
    size: usize,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

/// The worker's answer, one JSON line on stdout.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub struct Memory {
    /// Heap bytes held after forward (before backward) beyond those held before it.
    pub retained_bytes: usize,
    /// Heap high-water mark during the step, beyond the bytes held before it.
    pub peak_bytes: usize,
    /// Process peak RSS from after the model was built through the steps (includes the
    /// model); 0 where `/proc` is unavailable.
    pub peak_rss_bytes: u64,
}

/// Build the model, run a warm-up step and a measured step, print [`Memory`] as JSON.
pub fn run(args: Args) -> Result<()> {
    if !convbn::memory::is_counting() {
        bail!("the counting allocator is not installed; memory cannot be measured");
    }
    let device = args.device.training_device(crate::device::Precision::F32)?;
    let model = build(args.model, args.mode, &device)?;
    let w = Workload {
        arch: args.model,
        batch: args.batch,
        size: args.size,
    };
    rss::reset_peak();
    // The warm-up materialises lazily initialised parameters and thread pools.
    step(&model, w, &device)?;
    let (cost, _) = step(&model, w, &device)?;
    let memory = Memory {
        retained_bytes: cost.retained_bytes,
        peak_bytes: cost.peak_bytes,
        peak_rss_bytes: rss::peak_bytes(),
    };
    println!(
        "{}",
        serde_json::to_string(&memory).context("encoding the result")?
    );
    Ok(())
}
