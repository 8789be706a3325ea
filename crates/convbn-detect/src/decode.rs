//! From the detector's per-level outputs to detections: FCOS's score
//! `sqrt(sigmoid(class) * sigmoid(centerness))`, a score threshold, the best candidates per
//! level, boxes `location -/+ (l, t, r, b)` clipped to the image, per-class NMS, and a cap.

use burn::tensor::{Tensor, activation};

use crate::assign::location;
use crate::boxes::{Bbox, batched_nms};
use crate::detector::{LevelOutput, STRIDES};

/// Decoding settings (FCOS's defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeConfig {
    /// Candidates below this score are dropped.
    pub score_threshold: f64,
    /// At most this many candidates per level and image enter NMS.
    pub pre_nms_top_k: usize,
    /// NMS IoU threshold (per class).
    pub nms_iou: f64,
    /// Detections kept per image.
    pub max_detections: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            score_threshold: 0.05,
            pre_nms_top_k: 1000,
            nms_iou: 0.6,
            max_detections: 100,
        }
    }
}

/// One detection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// The box in image pixels.
    pub bbox: Bbox,
    /// Confidence in `[0, 1]`.
    pub score: f64,
    /// Class index.
    pub label: usize,
}

fn host(t: Tensor<4>) -> (Vec<f32>, [usize; 4]) {
    let dims = t.dims();
    (
        t.into_data()
            .convert::<f32>()
            .try_to_vec()
            .unwrap_or_default(),
        dims,
    )
}

/// Detections per image for outputs of images `width` x `height`.
pub fn decode(
    levels: &[LevelOutput],
    width: f64,
    height: f64,
    config: &DecodeConfig,
) -> Vec<Vec<Prediction>> {
    let batch = levels.first().map_or(0, |l| l.cls_logits.dims()[0]);
    let mut candidates: Vec<Vec<Prediction>> = vec![Vec::new(); batch];
    for (level, &stride) in levels.iter().zip(&STRIDES) {
        let (cls, [_, classes, h, w]) = host(activation::sigmoid(level.cls_logits.clone()));
        let (ctr, _) = host(activation::sigmoid(level.centerness.clone()));
        let (ltrb, _) = host(level.ltrb.clone());
        let plane = h * w;
        for (n, out) in candidates.iter_mut().enumerate() {
            let mut level_candidates = Vec::new();
            for c in 0..classes {
                for k in 0..plane {
                    let p = cls[(n * classes + c) * plane + k];
                    // A diverged model's NaN scores are dropped too.
                    if p.is_nan() || f64::from(p) < config.score_threshold {
                        continue;
                    }
                    let score = (f64::from(p) * f64::from(ctr[n * plane + k])).sqrt();
                    let (x, y) = location(stride, k / w, k % w);
                    let d = |i: usize| f64::from(ltrb[(n * 4 + i) * plane + k]);
                    let bbox =
                        Bbox::new(x - d(0), y - d(1), x + d(2), y + d(3)).clip(width, height);
                    if !(score.is_finite() && bbox.is_valid()) {
                        continue;
                    }
                    level_candidates.push(Prediction {
                        bbox,
                        score,
                        label: c,
                    });
                }
            }
            level_candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
            level_candidates.truncate(config.pre_nms_top_k);
            out.extend(level_candidates);
        }
    }
    candidates
        .into_iter()
        .map(|c| {
            let boxes: Vec<Bbox> = c.iter().map(|p| p.bbox).collect();
            let scores: Vec<f64> = c.iter().map(|p| p.score).collect();
            let labels: Vec<usize> = c.iter().map(|p| p.label).collect();
            batched_nms(&boxes, &scores, &labels, config.nms_iou)
                .into_iter()
                .take(config.max_detections)
                .map(|i| c[i])
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// One image, one class, three levels of 4x4, 2x2, 1x1 cells (a 32x32 image): two
    /// neighbouring level-0 cells predict nearly the same box, one strongly.
    #[test]
    fn strongest_box_survives_nms_and_weak_ones_are_dropped() {
        let d = Device::flex();
        let level = |h: usize, w: usize, cls: &[(usize, f32)], boxes: &[(usize, [f32; 4])]| {
            let mut c = vec![-9.0f32; h * w];
            for &(k, v) in cls {
                c[k] = v;
            }
            let mut l = vec![0.0f32; 4 * h * w];
            for &(k, b) in boxes {
                for i in 0..4 {
                    l[i * h * w + k] = b[i];
                }
            }
            LevelOutput {
                cls_logits: Tensor::from_data(TensorData::new(c, [1, 1, h, w]), &d),
                ltrb: Tensor::from_data(TensorData::new(l, [1, 4, h, w]), &d),
                centerness: Tensor::from_data(
                    TensorData::new(vec![9.0f32; h * w], [1, 1, h, w]),
                    &d,
                ),
            }
        };
        // Level 0 (stride 8): cell 5 is row 1, col 1, location (12, 12); cell 6 is row 1,
        // col 2, location (20, 12), whose box overlaps cell 5's by IoU 0.79.
        let l0 = level(
            4,
            4,
            &[(5, 4.0), (6, 1.0)],
            &[(5, [6.0, 6.0, 6.0, 6.0]), (6, [13.0, 6.0, 0.0, 6.0])],
        );
        let l1 = level(2, 2, &[], &[]);
        let l2 = level(1, 1, &[(0, -5.0)], &[]); // score sigmoid(-5) < 0.05: dropped
        let out = decode(&[l0, l1, l2], 32.0, 32.0, &DecodeConfig::default());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), 1, "{:?}", out[0]);
        let p = out[0][0];
        assert_eq!(p.bbox, Bbox::new(6.0, 6.0, 18.0, 18.0));
        assert_eq!(p.label, 0);
        assert!(p.score > 0.9);
    }
}
