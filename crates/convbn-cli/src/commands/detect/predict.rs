//! `convbn detect predict --checkpoint RUN/tune/checkpoint.safetensors IMAGE...`: detect
//! objects with a trained detector; writes one PNG per image with the boxes, labels and scores
//! drawn, and the detections as JSON.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use convbn_detect::decode::{DecodeConfig, Prediction};
use convbn_detect::train::data::{DetectionSet, load};
use convbn_detect::train::evaluate::predict;
use convbn_detect::train::trainer::load_trained;
use serde::Serialize;

use crate::commands::Format;
use crate::plot;

/// Prediction options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A checkpoint written by `convbn detect train` (any mode).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Folder for the drawn PNGs and `detections.json`.
    #[arg(long, default_value = "runs/detect-predict")]
    out: PathBuf,
    /// Lowest score drawn and listed.
    #[arg(long, default_value_t = 0.3)]
    score_threshold: f64,
    /// Most detections per image.
    #[arg(long, default_value_t = 100)]
    max_detections: usize,
    /// Also predict the first N test images of the checkpoint's dataset (ground truth drawn
    /// in white).
    #[arg(long, default_value_t = 0)]
    from_test: usize,
    /// Also predict the first N training images (to compare fit and generalisation).
    #[arg(long, default_value_t = 0)]
    from_train: usize,
    /// Output format of the detections on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Image files (PNG, JPEG or TIFF).
    images: Vec<PathBuf>,
    #[command(flatten)]
    device: crate::device::DeviceArgs,
}

#[derive(Serialize)]
struct Detection {
    class: String,
    label: usize,
    score: f64,
    /// `[x1, y1, x2, y2]` in the image's pixels.
    bbox: [f64; 4],
}

#[derive(Serialize)]
struct ImageResult {
    image: String,
    drawn: String,
    detections: Vec<Detection>,
}

/// Run it.
pub fn run(args: Args) -> Result<()> {
    if !(0.0..=1.0).contains(&args.score_threshold) {
        bail!(
            "--score-threshold {} must be a number between 0 and 1",
            args.score_threshold
        );
    }
    if args.max_detections == 0 {
        bail!("--max-detections must be at least 1");
    }
    if args.images.is_empty() && args.from_test == 0 && args.from_train == 0 {
        bail!("give image files, or --from-test N / --from-train N for the checkpoint's data");
    }
    let device = args.device.inference_device()?;
    let (model, log) = load_trained(&args.checkpoint, &device)
        .with_context(|| format!("loading {}", args.checkpoint.display()))?;
    let size = log.config.size;
    let mut images = Vec::new();
    for path in &args.images {
        let image = image::open(path)
            .with_context(|| format!("{} is not a readable image", path.display()))?
            .to_rgb8();
        images.push((path.display().to_string(), image));
    }
    let mut sets = vec![(
        DetectionSet::from_images(log.classes.clone(), &images, size),
        false,
    )];
    if args.from_test > 0 || args.from_train > 0 {
        let config = convbn_detect::train::DetectConfig {
            test_limit: Some(args.from_test.max(1)),
            train_limit: Some(args.from_train.max(1)),
            ..log.config.clone()
        };
        let split = load(&config, true)?;
        if args.from_train > 0 {
            sets.push((split.train, true));
        }
        if args.from_test > 0 {
            sets.push((split.test, true));
        }
    }
    let decode = DecodeConfig {
        score_threshold: args.score_threshold,
        max_detections: args.max_detections,
        ..DecodeConfig::default()
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut results = Vec::new();
    let mut outputs = crate::commands::names::UniqueNames::default();
    for (set, from_data) in &sets {
        if set.is_empty() {
            continue;
        }
        let predictions = predict(&model, set, 16, &decode, &device, &mut |_, _| {})?;
        for (i, found) in predictions.iter().enumerate() {
            let name = set.names[i].clone();
            let source = if *from_data {
                set.rgb(i)
            } else {
                images[i].1.clone()
            };
            let (w, h) = set.sizes[i];
            let source = if source.dimensions() == (w, h) {
                source
            } else {
                convbn_zoo::image::resize_bilinear(&source, w, h).unwrap_or(source)
            };
            let truth: Vec<_> = set.boxes[i]
                .iter()
                .copied()
                .zip(set.labels[i].iter().copied())
                .collect();
            let stem = if *from_data {
                sanitize(&name)
            } else {
                sanitize(
                    &Path::new(&name)
                        .file_stem()
                        .map_or_else(|| name.clone(), |s| s.to_string_lossy().into_owned()),
                )
            };
            let drawn = args.out.join(format!("{}.png", outputs.claim(&stem)));
            plot::boxes::draw(&source, found, &truth, &log.classes, &drawn)?;
            results.push(ImageResult {
                image: name,
                drawn: drawn.display().to_string(),
                detections: found.iter().map(|p| detection(p, &log.classes)).collect(),
            });
        }
    }
    let json = serde_json::to_vec_pretty(&results)?;
    convbn_zoo::files::write_atomically(&args.out.join("detections.json"), &json)?;
    match args.format {
        Format::Json => println!("{}", String::from_utf8_lossy(&json)),
        Format::Table => {
            for r in &results {
                println!("{} -> {}", r.image, r.drawn);
                for d in &r.detections {
                    let [x1, y1, x2, y2] = d.bbox;
                    println!(
                        "  {:<12} {:.3}  [{x1:.1}, {y1:.1}, {x2:.1}, {y2:.1}]",
                        d.class, d.score
                    );
                }
            }
        }
    }
    Ok(())
}

fn detection(p: &Prediction, classes: &[String]) -> Detection {
    let b = p.bbox;
    Detection {
        class: classes.get(p.label).cloned().unwrap_or_default(),
        label: p.label,
        score: p.score,
        bbox: [b.x1, b.y1, b.x2, b.y2],
    }
}

/// `name` as a file name: characters other than letters, digits, `-`, `_` and `.` replaced.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
