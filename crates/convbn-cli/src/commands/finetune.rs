//! `convbn finetune`: fine-tune a pretrained model on a dataset in one ConvBN mode, with the
//! lock-step trainer on one device or with burn's Learner data-parallel on several
//! (`--devices`).

use anyhow::Result;
use convbn::Mode;
use convbn_train::learner::{finetune_with_learner, learner_dir};
use serde::Serialize;

use crate::commands::Format;
use crate::commands::data_parallel::DevicesArgs;
use crate::commands::report::{claim_run_dir, train_and_report};
use crate::commands::train_args::TrainArgs;

/// Fine-tuning options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Mode of every ConvBN block: tune (Eval's results, less memory and time), eval, deploy
    /// or train.
    #[arg(long, default_value = "tune")]
    mode: Mode,
    #[command(flatten)]
    train: TrainArgs,
    #[command(flatten)]
    parallel: DevicesArgs,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Run it.
pub fn run(args: Args) -> Result<()> {
    if !args.parallel.is_set() {
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
    let config = args.train.config()?;
    let _lock = claim_run_dir(&args.train.out)?;
    let plan = args.parallel.plan(
        &args.train.device,
        &args.train.run,
        &args.train.out,
        &[args.mode],
    )?;
    let outcome = finetune_with_learner(
        &config,
        args.mode,
        &plan.devices,
        plan.parallelism,
        &plan.dir,
        true,
    )?;
    let summary = LearnerSummary {
        mode: args.mode,
        devices: args.parallel.names(),
        config: &config,
        steps: outcome.steps,
        train_seconds: outcome.train_seconds,
        test_accuracy: outcome.test_accuracy,
    };
    plan.finish(&outcome.model, &outcome.model.pytorch_naming(), &summary)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        Format::Table => println!(
            "| mode | devices | steps | train s | test accuracy |\n|---|---|---|---|---|\n\
             | {} | {} | {} | {:.1} | {:.2} % |\n\nweights: {}\nburn's logs: {}",
            summary.mode,
            summary.devices.join(", "),
            summary.steps,
            summary.train_seconds,
            100.0 * summary.test_accuracy,
            plan.weights.display(),
            learner_dir(&plan.dir).display()
        ),
    }
    Ok(())
}
