//! Training batches: images at the network size with their augmentation applied, and each
//! image's FCOS targets, computed from its boxes resized and moved the same way.

use burn::tensor::{Device, Tensor, TensorData};

use crate::assign::{Level, Targets, fcos_targets};
use crate::detector::STRIDES;
use crate::train::augment::Augmentation;
use crate::train::data::DetectionSet;

/// FCOS's centre-sampling radius, in strides.
pub const CENTER_RADIUS: f64 = 1.5;

/// The regression range of each level: FCOS's P3-P5 ranges, the last one open.
pub const RANGES: [(f64, f64); 3] = [(0.0, 64.0), (64.0, 128.0), (128.0, f64::INFINITY)];

/// The feature levels of a `size` x `size` input.
pub fn levels(size: usize) -> Vec<Level> {
    STRIDES
        .iter()
        .zip(RANGES)
        .map(|(&s, r)| {
            let n = size.div_ceil(s as usize);
            Level::new(s, n, n, r)
        })
        .collect()
}

/// The backbones' input normalisation (torchvision's ImageNet mean and std, on `[0, 1]`).
pub fn normalization() -> ([f32; 3], [f32; 3]) {
    convbn_zoo::Architecture::MobileNetV2.normalization()
}

/// Images `indices` of `set` as a normalised `[N, 3, S, S]` batch; `augmentations[k]` applies
/// to image `k` (an empty slice: none).
pub fn images(
    set: &DetectionSet,
    indices: &[usize],
    augmentations: &[Augmentation],
    device: &Device,
) -> Tensor<4> {
    let s = set.images.width;
    let (mean, std) = normalization();
    let channels = set.images.channels;
    let mut out = vec![0f32; indices.len() * 3 * s * s];
    for (k, &i) in indices.iter().enumerate() {
        let a = augmentations.get(k).copied().unwrap_or_default();
        let src = set.images.image(i);
        // Output pixel -> source pixel, shared by the channels.
        let map: Vec<usize> = (0..s * s)
            .map(|p| {
                let (x, y) = ((p % s) as f64 + 0.5, (p / s) as f64 + 0.5);
                let (sx, sy) = a.orientation.backward((x, y), s as f64);
                (sy as usize).min(s - 1) * s + (sx as usize).min(s - 1)
            })
            .collect();
        for c in 0..3 {
            let plane = &src[(c % channels) * s * s..][..s * s];
            let dst = &mut out[(k * 3 + c) * s * s..][..s * s];
            for (o, &from) in dst.iter_mut().zip(&map) {
                let v = a.colour(f32::from(plane[from]) / 255.0, c);
                *o = (v - mean[c]) / std[c];
            }
        }
    }
    Tensor::from_data(TensorData::new(out, [indices.len(), 3, s, s]), device)
}

/// The FCOS targets of images `indices` under `augmentations` (an empty slice: none).
pub fn targets(
    set: &DetectionSet,
    indices: &[usize],
    augmentations: &[Augmentation],
) -> Vec<Targets> {
    let levels = levels(set.images.width);
    let s = set.images.width as f64;
    indices
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let o = augmentations
                .get(k)
                .copied()
                .unwrap_or_default()
                .orientation;
            let boxes: Vec<_> = set
                .network_boxes(i)
                .into_iter()
                .map(|b| o.apply(b, s))
                .collect();
            fcos_targets(&levels, &boxes, &set.labels[i], Some(CENTER_RADIUS))
        })
        .collect()
}
