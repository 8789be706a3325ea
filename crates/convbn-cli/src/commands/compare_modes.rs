//! `convbn compare-modes`: the same fine-tuning run (same seed, same batches) in several
//! modes in lock-step, one iteration of each in turn, with one table and one chart.

use anyhow::Result;
use convbn::Mode;

use crate::commands::Format;
use crate::commands::report::train_and_report;
use crate::commands::train_args::TrainArgs;

/// Comparison options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Modes to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "eval,tune,deploy")]
    modes: Vec<Mode>,
    #[command(flatten)]
    train: TrainArgs,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Run it.
pub fn run(args: Args) -> Result<()> {
    crate::commands::distinct_modes(&args.modes, "--modes")?;
    train_and_report(&args.train, &args.modes, args.format)
}
