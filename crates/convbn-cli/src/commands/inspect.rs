//! `convbn inspect`: the ConvBN blocks of a zoo model and its parameter count.

use anyhow::Result;
use convbn::{BlockField, Mode, blocks, set_mode, trainable_parameters};
use convbn_zoo::Architecture;
use convbn_zoo::pretrained::{Weights, build};
use serde::Serialize;

use crate::commands::Format;

/// Model to inspect.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Architecture name.
    model: Architecture,
    /// Switch the blocks to this mode first.
    #[arg(long, default_value = "eval")]
    mode: Mode,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

#[derive(Serialize)]
struct Block {
    path: String,
    mode: Mode,
    weight_shape: Vec<usize>,
    conv_bias: bool,
    affine: bool,
}

#[derive(Serialize)]
struct Report {
    model: String,
    parameters: usize,
    blocks: Vec<Block>,
}

/// Print the blocks.
pub fn run(args: Args) -> Result<()> {
    let mut model = build(
        args.model,
        &Weights::Random,
        false,
        &args.device.inference_device()?,
    )?;
    set_mode(&mut model, args.mode)?;
    let report = Report {
        model: args.model.to_string(),
        parameters: trainable_parameters(&model),
        blocks: blocks(&model)
            .into_iter()
            .map(|b| Block {
                path: b.path,
                mode: b.mode,
                weight_shape: b.weight_shape,
                conv_bias: b.conv_bias,
                affine: b.affine,
            })
            .collect(),
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => {
            println!(
                "{:<40} {:<7} {:<22} bias affine",
                "block",
                "mode",
                BlockField::Weight.name()
            );
            for b in &report.blocks {
                println!(
                    "{:<40} {:<7} {:<22} {:<4} {}",
                    b.path,
                    b.mode,
                    format!("{:?}", b.weight_shape),
                    b.conv_bias,
                    b.affine
                );
            }
            println!(
                "{}: {} ConvBN blocks, {} trainable parameters",
                report.model,
                report.blocks.len(),
                report.parameters
            );
        }
    }
    Ok(())
}
