//! `convbn stability`: why Deploy mode is unstable. The distribution of the scaling
//! coefficients `s = gamma / sqrt(running_var + eps)` over all ConvBN blocks of a pretrained
//! model (the paper's Figure 2a), and, from a `compare-modes` run, Deploy's training curves
//! against Eval's and Tune's (Figure 2b).
//!
//! Deploy trains `W' = s W`. An SGD step on `W'` with learning rate `lr` changes the
//! equivalent `W = W'/s` by `lr/s^2` times the gradient Eval would apply to `W`: Deploy is Eval
//! with a per-channel learning rate multiplied by `1/s^2`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use convbn::{Mode, scales};
use convbn_train::log::RunLog;
use convbn_train::trainer::log_file;
use convbn_zoo::Architecture;
use convbn_zoo::pretrained::{Weights, build};
use serde::Serialize;

use crate::commands::Format;
use crate::plot;

/// What to analyse.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Architecture.
    #[arg(default_value = "mobilenet_v2")]
    model: Architecture,
    /// A checkpoint in the reference PyTorch layout instead of the ImageNet asset.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Folder for `scales.png` (and `deploy_vs_eval.png` with --run).
    #[arg(long, default_value = "runs/stability")]
    out: PathBuf,
    /// A `compare-modes` run directory (with deploy and eval/tune logs) to chart Figure 2b.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

/// Distribution of the scaling coefficients.
#[derive(Serialize, Debug)]
struct Summary {
    model: String,
    blocks: usize,
    channels: usize,
    /// Channels with negative `s` (negative gamma); the statistics below are of `|s|`.
    negative: usize,
    min: f64,
    p01: f64,
    p05: f64,
    median: f64,
    p95: f64,
    p99: f64,
    max: f64,
    /// Fraction of channels with `|s| < 1`, whose Deploy learning rate is larger than Eval's.
    fraction_below_1: f64,
    /// Fraction with `|s| < 0.1` (Deploy learning rate over 100x Eval's).
    fraction_below_0_1: f64,
    /// Largest per-channel learning-rate factor `1/s^2` of Deploy mode.
    max_lr_factor: f64,
    /// Smallest `1/s^2`.
    min_lr_factor: f64,
    /// The block holding the smallest `s`.
    smallest_in: String,
    /// Final accuracy per mode of the `--run` directory, if given.
    runs: Vec<(String, f64, Option<usize>)>,
}

/// Run it.
pub fn run(args: Args) -> Result<()> {
    let device = args.device.inference_device()?;
    let weights = args
        .weights
        .clone()
        .map_or(Weights::ImageNet, Weights::File);
    let model = build(args.model, &weights, true, &device)
        .with_context(|| format!("loading {}", args.model))?;
    let per_block = scales(&model);
    let mut all: Vec<(f64, &str)> = Vec::new();
    for b in &per_block {
        if let Some(s) = &b.scale {
            all.extend(s.iter().map(|v| (*v as f64, b.block.path.as_str())));
        }
    }
    if all.is_empty() {
        bail!("{} has no unfolded ConvBN block", args.model);
    }
    // Deploy's learning-rate factor depends on s^2: order channels by |s| (gamma, and so s,
    // can be negative, e.g. in EfficientNet-Lite).
    let negative = all.iter().filter(|(v, _)| *v < 0.0).count();
    for v in &mut all {
        v.0 = v.0.abs();
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let q = |p: f64| all[((n - 1) as f64 * p).round() as usize].0;
    let frac = |t: f64| all.iter().filter(|(v, _)| *v < t).count() as f64 / n as f64;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let values: Vec<f64> = all.iter().map(|(v, _)| *v).collect();
    let hist = args.out.join("scales.png");
    plot::histogram::draw_log10(
        &values,
        60,
        &format!(
            "{}: |s| = |gamma| / sqrt(var + eps), {} channels of {} ConvBN blocks",
            args.model,
            n,
            per_block.len()
        ),
        "scaling coefficient |s| (log scale)",
        &hist,
    )?;
    let mut runs = Vec::new();
    if let Some(dir) = &args.run {
        let mut logs: Vec<RunLog> = Vec::new();
        for mode in [Mode::Eval, Mode::Tune, Mode::Deploy, Mode::Train] {
            let path = log_file(dir, mode);
            if path.is_file() {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                logs.push(
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a run log", path.display()))?,
                );
            }
        }
        if !logs.iter().any(|l| l.mode == Mode::Deploy) || logs.len() < 2 {
            bail!(
                "{} needs the logs of a `compare-modes` run with deploy and eval or tune \
                 (<run>/<mode>/log.json)",
                dir.display()
            );
        }
        for l in &logs {
            let s = l.summarize();
            runs.push((l.mode.to_string(), s.final_test_accuracy, s.diverged_at));
        }
        plot::curves::draw(
            &logs,
            "Deploy vs Eval/Tune at the same learning rate",
            &args.out.join("deploy_vs_eval.png"),
        )?;
    }
    let summary = Summary {
        model: args.model.to_string(),
        blocks: per_block.len(),
        channels: n,
        negative,
        min: all[0].0,
        p01: q(0.01),
        p05: q(0.05),
        median: q(0.5),
        p95: q(0.95),
        p99: q(0.99),
        max: all[n - 1].0,
        fraction_below_1: frac(1.0),
        fraction_below_0_1: frac(0.1),
        max_lr_factor: 1.0 / (all[0].0 * all[0].0),
        min_lr_factor: 1.0 / (all[n - 1].0 * all[n - 1].0),
        smallest_in: all[0].1.to_string(),
        runs,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        Format::Table => {
            let s = &summary;
            println!(
                "{}: {} ConvBN blocks, {} channels ({} with negative s); |s| = |gamma| / sqrt(var + eps):",
                s.model, s.blocks, s.channels, s.negative
            );
            println!(
                "  min {:.4}  1% {:.4}  5% {:.4}  median {:.4}  95% {:.4}  99% {:.4}  max {:.4}",
                s.min, s.p01, s.p05, s.median, s.p95, s.p99, s.max
            );
            println!(
                "  {:.1}% of channels have |s| < 1 and {:.2}% |s| < 0.1; Deploy's per-channel \
                 learning-rate factor 1/s^2 ranges from {:.2e} to {:.1} (smallest |s| in {})",
                100.0 * s.fraction_below_1,
                100.0 * s.fraction_below_0_1,
                s.min_lr_factor,
                s.max_lr_factor,
                s.smallest_in
            );
            for (mode, acc, div) in &s.runs {
                println!(
                    "  run {mode}: final test accuracy {:.2}%{}",
                    100.0 * acc,
                    div.map_or(String::new(), |d| format!(", diverged at iteration {d}"))
                );
            }
            println!("histogram: {}", hist.display());
            if args.run.is_some() {
                println!("curves: {}", args.out.join("deploy_vs_eval.png").display());
            }
        }
    }
    Ok(())
}
