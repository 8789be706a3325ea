//! A small synthetic COCO dataset written to disk, and a detection config over it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use convbn_detect::train::augment::Augment;
use convbn_detect::train::log::DetectLog;
use convbn_detect::train::{DetectConfig, DetectData};
use convbn_train::{OptimizerConfig, OptimizerKind, RunOptions, Schedule, Start};
use image::{Rgb, RgbImage};
use serde_json::json;

/// A fresh directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convbn-detect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` images of 80x64 (not square: resizing scales x and y differently) on a grey (40)
/// background with one or two filled rectangles: red ones are category 1 ("red"), blue ones
/// category 2 ("blue"). Files `s{seed}-img{i}.png` in `dir`; returns the annotation file.
pub fn synthetic_coco(dir: &Path, n: usize, seed: u64) -> PathBuf {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |m: u32| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % u64::from(m)) as u32
    };
    let (mut images, mut annotations) = (Vec::new(), Vec::new());
    for i in 0..n {
        let mut img = RgbImage::from_pixel(80, 64, Rgb([40, 40, 40]));
        for k in 0..1 + (i % 2) {
            // Two objects sit in separate halves, so they never overlap.
            let (w, h) = (12 + next(20), 12 + next(16));
            let (x, y) = (k as u32 * 40 + next(40 - w), next(64 - h));
            let class = 1 + next(2);
            let colour = if class == 1 {
                Rgb([220, 30, 30])
            } else {
                Rgb([30, 30, 220])
            };
            for yy in y..y + h {
                for xx in x..x + w {
                    img.put_pixel(xx, yy, colour);
                }
            }
            annotations.push(json!({"id": annotations.len() + 1, "image_id": i + 1,
                "category_id": class, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}));
        }
        let file = format!("s{seed}-img{i}.png");
        img.save(dir.join(&file)).unwrap();
        images.push(json!({"id": i + 1, "width": 80, "height": 64, "file_name": file}));
    }
    let path = dir.join(format!("annotations-{seed}.json"));
    let coco = json!({"images": images, "annotations": annotations,
        "categories": [{"id": 1, "name": "red"}, {"id": 2, "name": "blue"}]});
    std::fs::write(&path, serde_json::to_vec(&coco).unwrap()).unwrap();
    path
}

/// 12 training and 4 test images at 64x64, a small head, random backbone, 2 epochs of 3
/// iterations.
pub fn config(dir: &Path) -> DetectConfig {
    let train = synthetic_coco(dir, 12, 1);
    let test = synthetic_coco(dir, 4, 2);
    DetectConfig {
        data: DetectData::Coco {
            train,
            train_images: dir.to_path_buf(),
            test,
            test_images: dir.to_path_buf(),
        },
        skip_invalid: false,
        backbone: "mobilenet_v2".into(),
        start: Start::Random,
        size: 64,
        channels: 16,
        batch_size: 4,
        epochs: 2,
        train_limit: None,
        test_limit: None,
        augment: Augment::Flip,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
        },
        schedule: Schedule::Cosine { warmup: 2 },
        seed: 3,
        eval_batch_size: 3,
    }
}

/// Checkpoints every 2 iterations into `out`, replacing earlier ones.
pub fn options(out: &Path) -> RunOptions {
    RunOptions {
        out_dir: out.to_path_buf(),
        checkpoint_every: 2,
        stop_after: None,
        fetch: false,
        overwrite: true,
    }
}

/// A log's losses.
pub fn losses(l: &DetectLog) -> Vec<f64> {
    l.iterations.iter().map(|r| r.loss).collect()
}

/// The largest `|a - b| / |a|` over paired losses.
pub fn largest_relative_gap(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs())
        .fold(0.0, f64::max)
}

/// The CPU device with f64 as its float type (configured once per process).
pub fn f64_device() -> burn::tensor::Device {
    use burn::tensor::{DType, Device, DeviceConfig, FloatDType, Tensor};
    static CONFIGURE: std::sync::Once = std::sync::Once::new();
    CONFIGURE.call_once(|| {
        Device::flex()
            .configure(DeviceConfig {
                float_dtype: Some(FloatDType::F64),
                ..Default::default()
            })
            .unwrap()
    });
    let device = Device::flex();
    assert_eq!(Tensor::<1>::zeros([1], &device).dtype(), DType::F64);
    device.autodiff()
}
