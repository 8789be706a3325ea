//! ImageNet: its normalisation, class names and top-k predictions.

use serde::Serialize;

/// Per-channel `(mean, std)` of ImageNet on `[0, 1]` RGB input, which torchvision's
/// pretrained models (and most CNNs) expect.
pub const NORMALIZATION: ([f32; 3], [f32; 3]) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);

/// torchvision's ImageNet-1k class names, by index.
pub fn class_names() -> Vec<&'static str> {
    include_str!("imagenet_classes.txt").lines().collect()
}

/// One predicted class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// Class index.
    pub class_index: usize,
    /// Class name (the index as text when no names are known).
    pub label: String,
    /// Softmax probability.
    pub probability: f32,
}

/// The `k` most probable classes of one row of logits, best first.
pub fn top_k(logits: &[f32], k: usize, names: &[&str]) -> Vec<Prediction> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f64> = logits.iter().map(|l| ((l - max) as f64).exp()).collect();
    let sum: f64 = exp.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    order
        .into_iter()
        .take(k)
        .map(|i| Prediction {
            class_index: i,
            label: names
                .get(i)
                .map_or_else(|| i.to_string(), |n| n.to_string()),
            probability: (exp[i] / sum) as f32,
        })
        .collect()
}
