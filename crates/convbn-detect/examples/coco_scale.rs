//! Benchmark (not a test): loading a COCO annotation file at train2017 scale — 118,287
//! images, 860,001 annotations, 80 categories — written to a temporary file, then parsed,
//! validated and turned into samples, each step timed.
//!
//! `cargo run --release -p convbn-detect --example coco_scale [IMAGES ANNOTATIONS]`

use std::fmt::Write;
use std::time::Instant;

use convbn_detect::coco::CocoDataset;
use convbn_detect::samples::{OnInvalid, from_coco};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let (images, annotations) = match args[..] {
        [i, a] => (i, a),
        _ => (118_287, 860_001),
    };
    let dir = std::env::temp_dir().join(format!("convbn-coco-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // Every image names the same small file, so the samples step checks every annotation.
    image::RgbImage::new(640, 480).save(dir.join("x.png"))?;
    let mut json = String::from("{\"images\": [");
    for i in 0..images {
        let sep = if i == 0 { "" } else { "," };
        write!(
            json,
            "{sep}{{\"id\": {}, \"file_name\": \"x.png\", \"width\": 640, \"height\": 480}}",
            i + 1
        )?;
    }
    json.push_str("], \"annotations\": [");
    for a in 0..annotations {
        let sep = if a == 0 { "" } else { "," };
        let (x, y) = ((a * 37) % 500, (a * 53) % 380);
        write!(
            json,
            "{sep}{{\"id\": {}, \"image_id\": {}, \"category_id\": {}, \"bbox\": [{x}, {y}, 40.5, \
             30.25], \"area\": 1225.125, \"iscrowd\": 0}}",
            a + 1,
            (a * 7919) % images + 1,
            a % 80 + 1
        )?;
    }
    json.push_str("], \"categories\": [");
    for c in 0..80 {
        let sep = if c == 0 { "" } else { "," };
        write!(json, "{sep}{{\"id\": {}, \"name\": \"class{c}\"}}", c + 1)?;
    }
    json.push_str("]}");
    let file = dir.join("instances.json");
    std::fs::write(&file, &json)?;
    println!(
        "{images} images, {annotations} annotations, {:.1} MB of JSON",
        json.len() as f64 / 1e6
    );
    let start = Instant::now();
    let dataset = CocoDataset::parse(&file)?;
    let parsed = start.elapsed().as_secs_f64();
    dataset.validate()?;
    let validated = start.elapsed().as_secs_f64();
    let samples = from_coco(&dataset, &dir, OnInvalid::Error)?;
    let total = start.elapsed().as_secs_f64();
    let boxes: usize = samples.samples.iter().map(|s| s.boxes.len()).sum();
    println!(
        "parse {parsed:.2} s, validate {:.2} s, samples {:.2} s: {total:.2} s in all ({} \
         samples, {boxes} boxes)",
        validated - parsed,
        total - validated,
        samples.samples.len()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
