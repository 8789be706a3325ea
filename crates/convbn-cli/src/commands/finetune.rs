//! `convbn finetune`: fine-tune a pretrained model on a dataset in one ConvBN mode.

use anyhow::Result;
use convbn::Mode;

use crate::commands::Format;
use crate::commands::report::train_and_report;
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
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Run it.
pub fn run(args: Args) -> Result<()> {
    train_and_report(&args.train, &[args.mode], args.format)
}
