//! Running a detector over a set of images and scoring it the way pycocotools does.

use burn::tensor::Device;

use crate::Result;
use crate::coco::{CocoStats, Detection, evaluate};
use crate::decode::{DecodeConfig, Prediction, decode};
use crate::detector::Detector;
use crate::train::batch::images;
use crate::train::data::DetectionSet;

/// Every image's detections, in its source pixels. `model` should be an inference model
/// (`Detector::valid()`) on `device`; `progress` hears `(done, total)` after each batch.
pub fn predict(
    model: &Detector,
    set: &DetectionSet,
    batch: usize,
    decode_config: &DecodeConfig,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Vec<Prediction>>> {
    let s = set.images.width as f64;
    let mut out = Vec::with_capacity(set.len());
    for start in (0..set.len()).step_by(batch.max(1)) {
        let idx: Vec<usize> = (start..(start + batch).min(set.len())).collect();
        let levels = model.forward(images(set, &idx, &[], device))?;
        for (k, predictions) in decode(&levels, s, s, decode_config).into_iter().enumerate() {
            let (w, h) = set.sizes[idx[k]];
            let (sx, sy) = (f64::from(w) / s, f64::from(h) / s);
            out.push(
                predictions
                    .into_iter()
                    .map(|p| Prediction {
                        bbox: p.bbox.resize(sx, sy),
                        ..p
                    })
                    .collect(),
            );
        }
        progress(out.len(), set.len());
    }
    Ok(out)
}

/// `predictions` (one list per image of `set`) as COCO results for [`DetectionSet::to_coco`].
pub fn to_detections(predictions: &[Vec<Prediction>]) -> Vec<Detection> {
    predictions
        .iter()
        .enumerate()
        .flat_map(|(i, ps)| {
            ps.iter().map(move |p| Detection {
                image_id: i as u64 + 1,
                category_id: p.label as u64 + 1,
                bbox: p.bbox.to_xywh(),
                score: p.score,
            })
        })
        .collect()
}

/// pycocotools' 12 numbers for `predictions` on `set`.
pub fn score(set: &DetectionSet, predictions: &[Vec<Prediction>]) -> Result<CocoStats> {
    evaluate(&set.to_coco(), &to_detections(predictions))
}
