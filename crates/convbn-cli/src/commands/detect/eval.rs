//! `convbn detect eval`: the COCO box evaluation, the numbers pycocotools'
//! `COCOeval(..., "bbox").summarize()` prints, of a results file
//! (`--coco-gt GT.json --coco-dt DETS.json`) or of a trained detector on its own data
//! (`--checkpoint RUN/tune/checkpoint.safetensors [--split test|train]`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use convbn_detect::coco::{CocoDataset, CocoStats, STAT_NAMES, evaluate, load_detections};
use convbn_detect::decode::DecodeConfig;
use convbn_detect::train::baseline::grid_baseline;
use convbn_detect::train::data::load;
use convbn_detect::train::evaluate::{predict, score, to_detections};
use convbn_detect::train::trainer::load_trained;

use crate::commands::Format;

/// Which images of a checkpoint's dataset.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The held-out test images.
    Test,
    /// The training images (how well the detector fits them).
    Train,
}

/// Evaluation options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// COCO ground truth (`images`, `annotations`, `categories`).
    #[arg(long, requires = "coco_dt", conflicts_with = "checkpoint")]
    coco_gt: Option<PathBuf>,
    /// COCO results: a JSON list of `{image_id, category_id, bbox, score}`.
    #[arg(long, requires = "coco_gt")]
    coco_dt: Option<PathBuf>,
    /// A checkpoint of `convbn detect train`: score it on its dataset.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// With --checkpoint: which images.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    split: Split,
    /// With --checkpoint: also write the ground truth and the detections as COCO files
    /// (`gt.json`, `dt.json`) into this folder, for other tools.
    #[arg(long)]
    write_coco: Option<PathBuf>,
    /// `table` (pycocotools' lines) or `json` (`{"stats": [...12], "names": [...]}`).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

/// Run it.
pub fn run(args: Args) -> Result<()> {
    let (stats, baseline) = match (&args.coco_gt, &args.coco_dt, &args.checkpoint) {
        (Some(gt), Some(dt), None) => {
            let gt = CocoDataset::load(gt)?;
            let detections = load_detections(dt, &gt)?;
            (evaluate(&gt, &detections)?, None)
        }
        (None, None, Some(checkpoint)) => score_checkpoint(&args, checkpoint)?,
        _ => bail!("give --coco-gt GT.json --coco-dt DETS.json, or --checkpoint FILE"),
    };
    match args.format {
        Format::Json => {
            let mut v = serde_json::json!({ "stats": stats.stats, "names": STAT_NAMES });
            if let Some(b) = baseline {
                v["baseline"] = serde_json::json!(b.stats);
            }
            println!("{v}");
        }
        Format::Table => {
            print!("{}", stats.table());
            if let Some(b) = baseline {
                println!(
                    "trivial baseline (median-size boxes on a grid, no look at the pixels): AP \
                     {:.3}, AP50 {:.3}",
                    b.stats[0], b.stats[1]
                );
            }
        }
    }
    Ok(())
}

/// The checkpoint's detector on the chosen split of its data, and the trivial baseline.
fn score_checkpoint(
    args: &Args,
    checkpoint: &std::path::Path,
) -> Result<(CocoStats, Option<CocoStats>)> {
    let device = args.device.inference_device()?;
    let (model, log) = load_trained(checkpoint, &device)
        .with_context(|| format!("loading {}", checkpoint.display()))?;
    let split = load(&log.config, true)?;
    let set = match args.split {
        Split::Test => &split.test,
        Split::Train => &split.train,
    };
    let predictions = predict(
        &model,
        set,
        log.config.eval_batch_size,
        &DecodeConfig::default(),
        &device,
        &mut |_, _| {},
    )?;
    if let Some(dir) = &args.write_coco {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, json) in [
            ("gt.json", serde_json::to_vec(&set.to_coco())?),
            ("dt.json", serde_json::to_vec(&to_detections(&predictions))?),
        ] {
            convbn_zoo::files::write_atomically(&dir.join(name), &json)?;
        }
    }
    let baseline = score(set, &grid_baseline(&split.train, set))?;
    Ok((score(set, &predictions)?, Some(baseline)))
}
