//! COCO box evaluation, computed exactly as pycocotools' `COCOeval(gt, dt, "bbox")` does:
//! `evaluate()`, `accumulate()`, `summarize()`.
//!
//! - IoU thresholds `0.50:0.05:0.95`, 101 recall thresholds `0:0.01:1`, at most 1, 10 and 100
//!   detections per image, area ranges all / small (< 32^2) / medium / large (> 96^2) on the
//!   annotation's `area`;
//! - per image and category, detections in descending score (stable for ties) are matched
//!   greedily to the unmatched ground truth of highest IoU at least the threshold, preferring
//!   regular objects to ignored ones; crowd boxes (IoU = intersection / detection area) may
//!   match any number of detections, which are then ignored, as are unmatched detections
//!   outside the area range;
//! - precision is made monotone from the right and read at each recall threshold (101-point
//!   interpolation); AP and AR average over thresholds and categories with ground truth.

use std::collections::BTreeMap;

use serde::Serialize;

use super::dataset::{Annotation, CocoDataset, Detection};
use crate::Result;

/// pycocotools' order and names of the 12 summary numbers.
pub const STAT_NAMES: [&str; 12] = [
    "AP",
    "AP50",
    "AP75",
    "AP_small",
    "AP_medium",
    "AP_large",
    "AR1",
    "AR10",
    "AR100",
    "AR_small",
    "AR_medium",
    "AR_large",
];

/// The 12 summary numbers (`-1` where nothing could be measured, as in pycocotools).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CocoStats {
    /// In the order of [`STAT_NAMES`].
    pub stats: [f64; 12],
}

impl CocoStats {
    /// The table pycocotools prints.
    pub fn table(&self) -> String {
        let rows = [
            ("Average Precision", "0.50:0.95", "all", 100),
            ("Average Precision", "0.50", "all", 100),
            ("Average Precision", "0.75", "all", 100),
            ("Average Precision", "0.50:0.95", "small", 100),
            ("Average Precision", "0.50:0.95", "medium", 100),
            ("Average Precision", "0.50:0.95", "large", 100),
            ("Average Recall", "0.50:0.95", "all", 1),
            ("Average Recall", "0.50:0.95", "all", 10),
            ("Average Recall", "0.50:0.95", "all", 100),
            ("Average Recall", "0.50:0.95", "small", 100),
            ("Average Recall", "0.50:0.95", "medium", 100),
            ("Average Recall", "0.50:0.95", "large", 100),
        ];
        rows.iter()
            .zip(self.stats)
            .map(|((title, iou, area, dets), v)| {
                let short = if title.contains("Precision") {
                    "(AP)"
                } else {
                    "(AR)"
                };
                format!(
                    " {title:<18} {short} @[ IoU={iou:<9} | area={area:>6} | maxDets={dets:>3} ] = {v:.3}\n"
                )
            })
            .collect()
    }
}

/// numpy's `linspace(start, stop, num)`: `i * step + start`, the last value exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// Area ranges all, small, medium, large.
const AREAS: [(f64, f64); 4] = [
    (0.0, 1e10),
    (0.0, 32.0 * 32.0),
    (32.0 * 32.0, 96.0 * 96.0),
    (96.0 * 96.0, 1e10),
];
const MAX_DETS: [usize; 3] = [1, 10, 100];

/// pycocotools' `bbIou`: intersection over union of `[x, y, w, h]` boxes, over the
/// detection's area for a crowd ground truth.
fn iou(d: &[f64; 4], g: &[f64; 4], crowd: bool) -> f64 {
    let w = (d[0] + d[2]).min(g[0] + g[2]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[1] + d[3]).min(g[1] + g[3]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let (i, da, ga) = (w * h, d[2] * d[3], g[2] * g[3]);
    let u = if crowd { da } else { da + ga - i };
    i / u
}

/// A detection with its results-file id (1-based, as `loadRes` numbers them).
struct Det<'a> {
    id: u64,
    d: &'a Detection,
}

/// One image's ground truth and (sorted) detections of one category, and their IoUs
/// (`[detection][ground truth]`).
type ImageCategory<'a, 'b> = (&'a Vec<&'b Annotation>, &'a Vec<Det<'b>>, Vec<Vec<f64>>);

/// One image and category under one area range (pycocotools' `evaluateImg`).
struct ImageEval {
    scores: Vec<f64>,
    /// Matched ground-truth id per threshold and detection (0: unmatched).
    matched: Vec<Vec<u64>>,
    ignored: Vec<Vec<bool>>,
    gt_ignored: Vec<bool>,
}

fn evaluate_image(
    gts: &[&Annotation],
    dts: &[Det],
    ious: &[Vec<f64>],
    area: (f64, f64),
    thresholds: &[f64],
) -> ImageEval {
    let outside = |a: f64| a < area.0 || a > area.1;
    let ignore: Vec<bool> = gts
        .iter()
        .map(|g| g.iscrowd != 0 || outside(g.area()))
        .collect();
    // Regular ground truth first (stable).
    let mut order: Vec<usize> = (0..gts.len()).collect();
    order.sort_by_key(|&i| ignore[i]);
    let gt_ignored: Vec<bool> = order.iter().map(|&i| ignore[i]).collect();
    let t = thresholds.len();
    let mut gt_matched = vec![vec![0u64; gts.len()]; t];
    let mut matched = vec![vec![0u64; dts.len()]; t];
    let mut ignored = vec![vec![false; dts.len()]; t];
    for (ti, &threshold) in thresholds.iter().enumerate() {
        for (di, det) in dts.iter().enumerate() {
            let mut best = threshold.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for (gi, &g) in order.iter().enumerate() {
                if gt_matched[ti][gi] > 0 && gts[g].iscrowd == 0 {
                    continue;
                }
                if m.is_some_and(|m| !gt_ignored[m]) && gt_ignored[gi] {
                    break;
                }
                if ious[di][g] < best {
                    continue;
                }
                best = ious[di][g];
                m = Some(gi);
            }
            if let Some(m) = m {
                ignored[ti][di] = gt_ignored[m];
                matched[ti][di] = gts[order[m]].id;
                gt_matched[ti][m] = det.id;
            }
        }
    }
    for (di, det) in dts.iter().enumerate() {
        let b = &det.d.bbox;
        if outside(b[2] * b[3]) {
            for ti in 0..t {
                ignored[ti][di] |= matched[ti][di] == 0;
            }
        }
    }
    ImageEval {
        scores: dts.iter().map(|d| d.d.score).collect(),
        matched,
        ignored,
        gt_ignored,
    }
}

/// Evaluate `detections` against `gt` (both checked: see [`CocoDataset::load`] and
/// [`load_detections`](super::load_detections)); every image and category of `gt` counts.
pub fn evaluate(gt: &CocoDataset, detections: &[Detection]) -> Result<CocoStats> {
    gt.validate()?;
    let thresholds = linspace(0.5, 0.95, 10);
    let recall_thresholds = linspace(0.0, 1.0, 101);
    let mut image_ids: Vec<u64> = gt.images.iter().map(|i| i.id).collect();
    image_ids.sort_unstable();
    let mut category_ids: Vec<u64> = gt.categories.iter().map(|c| c.id).collect();
    category_ids.sort_unstable();

    let mut gts: BTreeMap<(u64, u64), Vec<&Annotation>> = BTreeMap::new();
    for a in &gt.annotations {
        gts.entry((a.image_id, a.category_id)).or_default().push(a);
    }
    let mut dts: BTreeMap<(u64, u64), Vec<Det>> = BTreeMap::new();
    for (i, d) in detections.iter().enumerate() {
        dts.entry((d.image_id, d.category_id))
            .or_default()
            .push(Det {
                id: i as u64 + 1,
                d,
            });
    }
    // Highest score first (stable), at most 100 per image and category.
    for list in dts.values_mut() {
        list.sort_by(|a, b| b.d.score.total_cmp(&a.d.score));
        list.truncate(MAX_DETS[2]);
    }

    let (t, r, k, a, m) = (
        thresholds.len(),
        recall_thresholds.len(),
        category_ids.len(),
        AREAS.len(),
        MAX_DETS.len(),
    );
    // precision[t][r][k][a][m], recall[t][k][a][m]; -1: not measurable.
    let mut precision = vec![-1.0f64; t * r * k * a * m];
    let mut recall = vec![-1.0f64; t * k * a * m];
    let none: Vec<&Annotation> = Vec::new();
    let no_dets: Vec<Det> = Vec::new();
    for (ki, &cat) in category_ids.iter().enumerate() {
        // Per image: the IoUs of its (sorted) detections with its ground truth.
        let per_image: Vec<ImageCategory> = image_ids
            .iter()
            .map(|&img| {
                let g = gts.get(&(img, cat)).unwrap_or(&none);
                let d = dts.get(&(img, cat)).unwrap_or(&no_dets);
                let ious = d
                    .iter()
                    .map(|d| {
                        g.iter()
                            .map(|g| iou(&d.d.bbox, &g.bbox, g.iscrowd != 0))
                            .collect()
                    })
                    .collect();
                (g, d, ious)
            })
            .collect();
        for (ai, &area) in AREAS.iter().enumerate() {
            let evals: Vec<ImageEval> = per_image
                .iter()
                .filter(|(g, d, _)| !(g.is_empty() && d.is_empty()))
                .map(|(g, d, ious)| evaluate_image(g, d, ious, area, &thresholds))
                .collect();
            if evals.is_empty() {
                continue;
            }
            let regular = evals
                .iter()
                .flat_map(|e| &e.gt_ignored)
                .filter(|&&i| !i)
                .count();
            if regular == 0 {
                continue;
            }
            for (mi, &max_det) in MAX_DETS.iter().enumerate() {
                // (score, image, detection) over all images, highest score first (stable).
                let mut all: Vec<(f64, usize, usize)> = evals
                    .iter()
                    .enumerate()
                    .flat_map(|(e, ev)| {
                        ev.scores
                            .iter()
                            .take(max_det)
                            .enumerate()
                            .map(move |(d, &s)| (s, e, d))
                    })
                    .collect();
                all.sort_by(|x, y| y.0.total_cmp(&x.0));
                for ti in 0..t {
                    let (mut tp, mut fp) = (0.0f64, 0.0f64);
                    let mut rc = Vec::with_capacity(all.len());
                    let mut pr = Vec::with_capacity(all.len());
                    for &(_, e, d) in &all {
                        if evals[e].ignored[ti][d] {
                            // Neither: cumulative sums unchanged, but the point counts.
                        } else if evals[e].matched[ti][d] != 0 {
                            tp += 1.0;
                        } else {
                            fp += 1.0;
                        }
                        rc.push(tp / regular as f64);
                        pr.push(tp / (fp + tp + f64::EPSILON));
                    }
                    recall[((ti * k + ki) * a + ai) * m + mi] = rc.last().copied().unwrap_or(0.0);
                    for i in (1..pr.len()).rev() {
                        if pr[i] > pr[i - 1] {
                            pr[i - 1] = pr[i];
                        }
                    }
                    for (ri, &threshold) in recall_thresholds.iter().enumerate() {
                        // First point reaching the threshold (searchsorted, side left); past
                        // the last point the rest stay 0.
                        let q = match rc.partition_point(|&v| v < threshold) {
                            i if i < pr.len() => pr[i],
                            _ => 0.0,
                        };
                        precision[(((ti * r + ri) * k + ki) * a + ai) * m + mi] = q;
                    }
                }
            }
        }
    }

    let mean = |values: Vec<f64>| {
        let valid: Vec<f64> = values.into_iter().filter(|&v| v > -1.0).collect();
        if valid.is_empty() {
            -1.0
        } else {
            valid.iter().sum::<f64>() / valid.len() as f64
        }
    };
    let ap = |iou: Option<usize>, ai: usize, mi: usize| {
        let mut v = Vec::new();
        for ti in 0..t {
            if iou.is_some_and(|i| i != ti) {
                continue;
            }
            for ri in 0..r {
                for ki in 0..k {
                    v.push(precision[(((ti * r + ri) * k + ki) * a + ai) * m + mi]);
                }
            }
        }
        mean(v)
    };
    let ar = |ai: usize, mi: usize| {
        let mut v = Vec::new();
        for ti in 0..t {
            for ki in 0..k {
                v.push(recall[((ti * k + ki) * a + ai) * m + mi]);
            }
        }
        mean(v)
    };
    Ok(CocoStats {
        stats: [
            ap(None, 0, 2),
            ap(Some(0), 0, 2),
            ap(Some(5), 0, 2),
            ap(None, 1, 2),
            ap(None, 2, 2),
            ap(None, 3, 2),
            ar(0, 0),
            ar(0, 1),
            ar(0, 2),
            ar(1, 2),
            ar(2, 2),
            ar(3, 2),
        ],
    })
}
