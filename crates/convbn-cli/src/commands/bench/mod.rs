//! `convbn bench`: memory and time of a training step of zoo models in every mode, across batch
//! sizes and input sizes, optionally side by side with PyTorch.
//!
//! - Memory: each (model, mode, batch, size) runs in a process of its own
//!   ([`worker`]: `convbn bench-worker`), so that one mode's peak cannot hide another's.
//! - Time: the modes' models live in this process and take turns step by step, the order
//!   rotating each step (and PyTorch's,
//!   through a [`pytorch::Session`]), so that machine noise hits all alike; medians are
//!   reported.

pub mod output;
pub mod pytorch;
mod rss;
mod step;
pub mod worker;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use convbn::DeviceSpec;
use convbn::Mode;
use convbn_zoo::Architecture;
use indicatif::{ProgressBar, ProgressStyle};

use self::output::{Framework, Row};
use self::step::{Workload, build, step};

/// Output format of `convbn bench`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchFormat {
    /// Human-readable table with ratios.
    Table,
    /// One line per row, comma-separated, with a header.
    Csv,
    /// A JSON array: one object per (framework, model, mode, batch, size).
    Json,
}

/// What to measure.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Architectures, comma-separated (see `convbn inspect --help` for names).
    #[arg(long, value_delimiter = ',', default_value = "resnet50,mobilenet_v2")]
    models: Vec<Architecture>,
    /// Modes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "train,eval,tune,deploy")]
    modes: Vec<Mode>,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "8")]
    batch: Vec<usize>,
    /// Input heights (= widths), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "224")]
    size: Vec<usize>,
    /// Timed steps per mode (medians are reported).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed warm-up steps per mode before the timed ones.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = BenchFormat::Table)]
    format: BenchFormat,
    /// Folder for `bench.json` and the charts (`bench_MODEL.png`).
    #[arg(long, default_value = "runs/bench")]
    out: PathBuf,
    /// Also run PyTorch (eager, CPU) on the same models, shapes and steps, interleaved.
    #[arg(long)]
    compare_pytorch: bool,
    /// Python with torch and torchvision (default: `$CONVBN_PYTHON`, then the one
    /// `bench/setup_pytorch.sh` installs, then `python3`).
    #[arg(long)]
    python: Option<PathBuf>,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

/// Run the whole benchmark.
pub fn run(args: Args) -> Result<()> {
    if args.models.is_empty() || args.modes.is_empty() {
        bail!("--models and --modes must name at least one each");
    }
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    if let Some(bad) = args.batch.iter().chain(&args.size).find(|&&v| v == 0) {
        bail!("--batch and --size must be positive (got {bad})");
    }
    if args.compare_pytorch && !args.device.device.is_cpu() {
        bail!(
            "--compare-pytorch runs PyTorch on the CPU, so it compares with --device cpu only \
             (got --device {})",
            args.device.device
        );
    }
    let python = args
        .compare_pytorch
        .then(|| pytorch::python(args.python.clone()));
    if let Some(python) = &python {
        let versions = pytorch::probe(python)?;
        eprintln!(
            "PyTorch reference: {} (torch, torchvision {versions})",
            python.display()
        );
    }
    let mut workloads = Vec::new();
    for &arch in &args.models {
        for &batch in &args.batch {
            for &size in &args.size {
                workloads.push(Workload { arch, batch, size });
            }
        }
    }
    let modes = &args.modes;
    // Times run every mode's model in one process: refuse sizes that cannot fit before any
    // worker starts (a probe step per architecture, scaled to the largest batch and size).
    let (batch, size) = (
        args.batch.iter().copied().max().unwrap_or(1),
        args.size.iter().copied().max().unwrap_or(1),
    );
    let device = args.device.training_device(crate::device::Precision::F32)?;
    for &arch in &args.models {
        crate::budget::ensure_zoo_training_fits(
            &format!("bench {arch}"),
            &arch.into(),
            modes.len(),
            batch,
            size,
            &device,
        )?;
    }
    // The CPU every figure of this run comes from, and the peak of its matrix products (the
    // GFLOP/s column's ceiling).
    let machine = args
        .device
        .device
        .is_cpu()
        .then(convbn::machine::Machine::describe);
    if let Some(machine) = &machine {
        eprintln!("machine: {}", machine.summary());
    }
    let steps_per_workload = (args.warmup + args.steps) as u64;
    let with_pt = |_: &Workload| python.is_some();
    let total: u64 = workloads
        .iter()
        .map(|w| {
            let k = if with_pt(w) { 2 } else { 1 } * modes.len() as u64;
            k + k * steps_per_workload
        })
        .sum();
    let bar = progress(total);
    let mut rows = Vec::new();
    for &w in &workloads {
        rows.extend(measure(w, modes, python.as_ref(), &args, &bar, &device)?);
    }
    bar.finish_and_clear();
    if let (Some(machine), BenchFormat::Table) = (&machine, args.format) {
        println!("machine: {}\n", machine.summary());
    }
    output::print(&rows, args.format)?;
    output::save(&rows, machine.as_ref(), &args.out)?;
    if args.format == BenchFormat::Table {
        println!(
            "\nwrote {} and charts bench_MODEL.png",
            args.out.join("bench.json").display()
        );
    }
    Ok(())
}

/// One workload's rows: memory of every mode in a process of its own, then time with the
/// modes (ours, and PyTorch's when `python` is given) interleaved step by step.
fn measure(
    w: Workload,
    modes: &[Mode],
    python: Option<&PathBuf>,
    args: &Args,
    bar: &ProgressBar,
    device: &burn::tensor::Device,
) -> Result<Vec<Row>> {
    let label = format!("{} batch {} {}x{}", w.arch, w.batch, w.size, w.size);
    // The reference script knows the modes by the same names.
    let pt_modes: Vec<String> = match python {
        Some(_) => modes.iter().map(Mode::to_string).collect(),
        None => Vec::new(),
    };
    let mut ours = Vec::new();
    for &mode in modes {
        status(bar, format!("{label}: memory, {mode}"));
        ours.push(spawn_worker(w, mode, &args.device.device)?);
        bar.inc(1);
    }
    let mut theirs = Vec::new();
    if let Some(python) = python {
        for mode in &pt_modes {
            status(bar, format!("{label}: memory, PyTorch {mode}"));
            theirs.push(pytorch::memory(python, w, mode)?);
            bar.inc(1);
        }
    }
    status(bar, format!("{label}: building models"));
    let models = modes
        .iter()
        .map(|&mode| build(w.arch, mode, device))
        .collect::<Result<Vec<_>>>()?;
    let mut session = match python {
        Some(python) => Some(pytorch::Session::start(python, w, &pt_modes)?),
        None => None,
    };
    let mut our_ms = vec![Vec::new(); modes.len()];
    let mut gflop = 0.0;
    let mut their_ms = vec![Vec::new(); pt_modes.len()];
    for i in 0..args.warmup + args.steps {
        let phase = if i < args.warmup { "warm-up" } else { "timing" };
        status(bar, format!("{label}: {phase} step {}", i + 1));
        // Each step starts with another mode (the order rotates), so that no mode always
        // runs first after PyTorch's steps or right after one particular other mode: on short
        // steps (batch 1) the cache and heap state a mode inherits shows in its time.
        for m in (0..models.len()).map(|k| (k + i) % models.len()) {
            let model = &models[m];
            // The first step also counts the convolutions' operations (the same in every
            // mode).
            let (cost, flops) = step(model, w, device)?;
            if i == 0 && m == 0 {
                gflop = flops / 1e9;
            }
            if i >= args.warmup {
                our_ms[m].push(cost.step_ms);
            }
            bar.inc(1);
        }
        if let Some(session) = session.as_mut() {
            for m in (0..pt_modes.len()).map(|k| (k + i) % pt_modes.len()) {
                let ms = session.step(&pt_modes[m])?;
                if i >= args.warmup {
                    their_ms[m].push(ms);
                }
                bar.inc(1);
            }
        }
    }
    let mut rows = Vec::new();
    for ((mode, mem), ms) in modes.iter().zip(ours).zip(our_ms) {
        let row = Row::new(Framework::Convbn, w, &mode.to_string(), ms).with_ours(mem);
        rows.push(row.with_gflop(gflop));
    }
    for ((mode, mem), ms) in pt_modes.iter().zip(theirs).zip(their_ms) {
        let row = Row::new(Framework::Pytorch, w, mode, ms).with_pytorch(mem);
        rows.push(row.with_gflop(gflop));
    }
    Ok(rows)
}

/// Measure one mode's memory in a child `convbn bench-worker`.
fn spawn_worker(w: Workload, mode: Mode, device: &DeviceSpec) -> Result<worker::Memory> {
    let exe = std::env::current_exe().context("locating the convbn binary")?;
    let out = Command::new(exe)
        .args(["bench-worker", "--model", w.arch.name(), "--mode"])
        .arg(mode.to_string())
        .args([
            "--batch",
            &w.batch.to_string(),
            "--size",
            &w.size.to_string(),
            "--device",
            &device.to_string(),
        ])
        .output()
        .context("starting the memory worker")?;
    if !out.status.success() {
        bail!(
            "measuring {} {mode} at batch {} size {} failed: {}",
            w.arch,
            w.batch,
            w.size,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("reading the memory worker's answer")
}

/// Show what is being measured: on the bar, or as a line on stderr when there is no terminal.
fn status(bar: &ProgressBar, message: String) {
    if bar.is_hidden() {
        eprintln!(
            "[{}/{}] {message}",
            bar.position(),
            bar.length().unwrap_or(0)
        );
    }
    bar.set_message(message);
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} (eta {eta}) {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}
