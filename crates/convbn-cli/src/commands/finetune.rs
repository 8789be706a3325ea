//! `convbn finetune`: fine-tune a pretrained model on a dataset in one ConvBN mode, with the
//! lock-step trainer on one device or with burn's Learner data-parallel on several
//! (`--devices`).

use anyhow::{Context, Result, bail};
use convbn::{DeviceSpec, Mode};
use convbn_train::learner::{finetune_with_learner, learner_dir};
use convbn_zoo::load::to_checkpoint;
use serde::Serialize;

use crate::commands::Format;
use crate::commands::report::{claim_run_dir, train_and_report, write};
use crate::commands::train_args::TrainArgs;
use crate::device::{DeviceArgs, Precision};

/// Fine-tuning options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Mode of every ConvBN block: tune (Eval's results, less memory and time), eval, deploy
    /// or train.
    #[arg(long, default_value = "tune")]
    mode: Mode,
    #[command(flatten)]
    train: TrainArgs,
    /// Train data-parallel with burn's Learner on these devices (comma-separated, e.g.
    /// `cuda:0,cuda:1`; the same device twice runs two workers on it). --batch-size is the
    /// global batch, split evenly. burn writes its logs under `<out>/<mode>/learner/`; the
    /// trained weights go to `<out>/<mode>/model.safetensors` (usable as --weights). No
    /// mid-run resume, per-iteration memory or charts on this path (docs/backends.md).
    #[arg(long, value_delimiter = ',', value_parser = parse_device, conflicts_with = "resume")]
    devices: Vec<DeviceSpec>,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn parse_device(s: &str) -> Result<DeviceSpec, String> {
    s.parse()
        .map_err(|e: convbn::device::DeviceError| e.to_string())
}

/// Run it.
pub fn run(args: Args) -> Result<()> {
    if args.devices.is_empty() {
        return train_and_report(&args.train, &[args.mode], args.format);
    }
    data_parallel(&args)
}

/// What a Learner run reports (`summary.json`).
#[derive(Serialize)]
struct LearnerSummary<'a> {
    mode: Mode,
    devices: Vec<String>,
    config: &'a convbn_train::FinetuneConfig,
    steps: usize,
    train_seconds: f64,
    test_accuracy: f64,
}

fn data_parallel(args: &Args) -> Result<()> {
    if args.train.device.device != DeviceSpec::Cpu {
        bail!("give either --device or --devices, not both");
    }
    if args.train.run.stop_after.is_some() {
        bail!(
            "--stop-after needs the lock-step trainer (no --devices): burn's Learner has no mid-run stop and resume"
        );
    }
    let config = args.train.config()?;
    let out = args.train.out.join(args.mode.to_string());
    let _lock = claim_run_dir(&args.train.out)?;
    let weights = out.join("model.safetensors");
    if weights.exists() && !args.train.run.overwrite {
        bail!(
            "{} holds the result of an earlier run; pass --overwrite to replace it or choose \
             another --out",
            out.display()
        );
    }
    let devices = args
        .devices
        .iter()
        .map(|spec| {
            DeviceArgs {
                device: spec.clone(),
            }
            .training_device(Precision::F32)
        })
        .collect::<Result<Vec<_>>>()?;
    eprintln!(
        "{} in {} mode with burn's Learner on {} (global batch {}, {} per device)",
        config.model,
        args.mode,
        args.devices
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        config.batch_size,
        config.batch_size / devices.len().max(1)
    );
    let outcome = finetune_with_learner(&config, args.mode, &devices, &out, true)?;
    let bytes = to_checkpoint(&outcome.model, &outcome.model.pytorch_naming())
        .to_safetensors_bytes(&[], None)
        .map_err(anyhow::Error::msg)
        .context("encoding the trained weights")?;
    write(&weights, &bytes)?;
    let summary = LearnerSummary {
        mode: args.mode,
        devices: args.devices.iter().map(|d| d.to_string()).collect(),
        config: &config,
        steps: outcome.steps,
        train_seconds: outcome.train_seconds,
        test_accuracy: outcome.test_accuracy,
    };
    write(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        Format::Table => println!(
            "| mode | devices | steps | train s | test accuracy |\n|---|---|---|---|---|\n| {} | {} | {} | {:.1} | {:.2} % |\n\nweights: {}\nburn's logs: {}",
            summary.mode,
            summary.devices.join(", "),
            summary.steps,
            summary.train_seconds,
            100.0 * summary.test_accuracy,
            weights.display(),
            learner_dir(&out).display()
        ),
    }
    Ok(())
}
