//! `convbn predict`: ImageNet top-k for image files with a pretrained model.

use std::path::PathBuf;

use anyhow::{Context, Result};
use convbn::{Mode, set_mode};
use convbn_zoo::imagenet::{Prediction, class_names, top_k};
use convbn_zoo::pretrained::{Weights, build};
use convbn_zoo::{Model, ModelSpec, image::preprocess};
use serde::Serialize;

use crate::commands::Format;

/// What to predict.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Architecture (mobilenet_v2, efficientnet_lite0, or any zoo model with --weights FILE),
    /// or onnx:FILE for an ONNX classifier (its own weights, ImageNet normalisation).
    #[arg(long, default_value = "mobilenet_v2")]
    model: ModelSpec,
    /// Mode of the ConvBN blocks.
    #[arg(long, default_value = "eval")]
    mode: Mode,
    /// A checkpoint in the reference PyTorch layout instead of the ImageNet asset.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Number of classes to show per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Image files (PNG or JPEG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

#[derive(Serialize)]
struct ImageResult {
    image: String,
    top5: Vec<Prediction>,
}

/// Run the prediction.
pub fn run(args: Args) -> Result<()> {
    if args.top == 0 || args.top > 1000 {
        anyhow::bail!(
            "--top {} must be between 1 and 1000 (ImageNet's classes)",
            args.top
        );
    }
    if let Some(missing) = args.images.iter().find(|p| !p.is_file()) {
        anyhow::bail!(
            "image {} does not exist or is not a file",
            missing.display()
        );
    }
    let device = args.device.inference_device()?;
    let weights = args
        .weights
        .clone()
        .map_or(Weights::ImageNet, Weights::File);
    let mut model = build(&args.model, &weights, true, &device)
        .with_context(|| format!("loading {}", args.model))?;
    set_mode(&mut model, args.mode)?;
    let (mean, std) = args.model.normalization();
    let (resize, crop) = input_size(&model)?;
    let names = class_names();
    let mut results = Vec::new();
    for image in &args.images {
        let x = preprocess(image, resize, crop, mean, std, &device)?;
        let logits = model.forward(x)?;
        let logits = logits
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        results.push(ImageResult {
            image: image.display().to_string(),
            // ImageNet's names only for ImageNet's 1000 classes; indices otherwise.
            top5: top_k(
                &logits,
                args.top,
                if logits.len() == names.len() {
                    &names
                } else {
                    &[]
                },
            ),
        });
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        Format::Table => {
            for r in &results {
                println!("{} ({} in {} mode):", r.image, args.model, args.mode);
                for p in &r.top5 {
                    println!(
                        "  {:>5.1}%  {:>4}  {}",
                        100.0 * p.probability,
                        p.class_index,
                        p.label
                    );
                }
            }
        }
    }
    Ok(())
}

/// The resize (shorter side) and centre crop for the model: ImageNet's 256 / 224, scaled to
/// an ONNX model's fixed square input.
fn input_size(model: &Model) -> Result<(u32, u32)> {
    let Model::Onnx(onnx) = model else {
        return Ok((256, 224));
    };
    match onnx.input_shape() {
        [_, _, Some(h), Some(w)] if h != w => anyhow::bail!(
            "this ONNX model takes {h}x{w} images; predict crops square images (use the \
             library for other shapes)"
        ),
        [_, _, Some(side), _] | [_, _, _, Some(side)] => {
            let side = u32::try_from(*side)
                .map_err(|_| anyhow::anyhow!("this ONNX model's input side {side} is too large"))?;
            Ok((side.saturating_mul(256) / 224, side))
        }
        _ => Ok((256, 224)),
    }
}
