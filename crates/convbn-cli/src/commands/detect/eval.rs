//! `convbn detect eval --coco-gt GT.json --coco-dt DETS.json`: COCO box evaluation of a
//! results file, the numbers pycocotools' `COCOeval(..., "bbox").summarize()` prints.

use std::path::PathBuf;

use anyhow::Result;
use convbn_detect::coco::{CocoDataset, STAT_NAMES, evaluate, load_detections};

use crate::commands::Format;

/// Evaluation options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// COCO ground truth (`images`, `annotations`, `categories`).
    #[arg(long)]
    coco_gt: PathBuf,
    /// COCO results: a JSON list of `{image_id, category_id, bbox, score}`.
    #[arg(long)]
    coco_dt: PathBuf,
    /// `table` (pycocotools' lines) or `json` (`{"stats": [...12], "names": [...]}`).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Run it.
pub fn run(args: Args) -> Result<()> {
    let gt = CocoDataset::load(&args.coco_gt)?;
    let detections = load_detections(&args.coco_dt, &gt)?;
    let stats = evaluate(&gt, &detections)?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({ "stats": stats.stats, "names": STAT_NAMES })
        ),
        Format::Table => print!("{}", stats.table()),
    }
    Ok(())
}
