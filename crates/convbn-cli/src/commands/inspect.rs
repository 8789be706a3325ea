//! `convbn inspect`: the ConvBN blocks of a zoo model and its parameter count.

use anyhow::Result;
use convbn::{BlockField, Mode, blocks, set_mode, trainable_parameters};
use convbn_zoo::pretrained::{Weights, build};
use convbn_zoo::{Model, ModelSpec};
use serde::Serialize;

use crate::commands::Format;

/// Model to inspect.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Architecture name, or onnx:FILE for an ONNX model.
    model: ModelSpec,
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
    /// The ONNX nodes (Conv+BatchNormalization) of the block, for ONNX models.
    #[serde(skip_serializing_if = "Option::is_none")]
    onnx_nodes: Option<String>,
}

#[derive(Serialize)]
struct Report {
    model: String,
    parameters: usize,
    blocks: Vec<Block>,
}

/// Print the blocks.
pub fn run(args: Args) -> Result<()> {
    // An ONNX model's structure comes with its weights; the zoo's needs none.
    let weights = match args.model {
        ModelSpec::Onnx(_) => Weights::ImageNet,
        ModelSpec::Zoo(_) => Weights::Random,
    };
    let mut model = build(
        &args.model,
        &weights,
        false,
        &args.device.inference_device()?,
    )?;
    set_mode(&mut model, args.mode)?;
    let onnx_names = match &model {
        Model::Onnx(m) => m.layer_names().to_vec(),
        _ => Vec::new(),
    };
    // `layers.<i>` is the ONNX model's layer i.
    let onnx_node = |path: &str| -> Option<String> {
        let i: usize = path.strip_prefix("layers.")?.parse().ok()?;
        onnx_names.get(i).cloned()
    };
    let report = Report {
        model: args.model.to_string(),
        parameters: trainable_parameters(&model),
        blocks: blocks(&model)
            .into_iter()
            .map(|b| Block {
                mode: b.mode,
                weight_shape: b.weight_shape,
                conv_bias: b.conv_bias,
                affine: b.affine,
                onnx_nodes: onnx_node(&b.path),
                path: b.path,
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
                    "{:<40} {:<7} {:<22} {:<4} {}{}",
                    b.path,
                    b.mode,
                    format!("{:?}", b.weight_shape),
                    b.conv_bias,
                    b.affine,
                    b.onnx_nodes
                        .as_ref()
                        .map_or(String::new(), |n| format!("  {n}"))
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
