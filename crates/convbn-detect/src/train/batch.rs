//! Training batches: images rendered at the network size (flipped by the augmentation) and
//! each image's FCOS targets, computed from its boxes resized and flipped the same way.

use burn::tensor::{Device, Tensor};
use convbn_train::data::augment::{Jitter, Transform};

use crate::assign::{Level, Targets, fcos_targets};
use crate::detector::STRIDES;
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

/// ImageNet normalisation at `size` (the backbone's).
pub fn transform(size: usize) -> Transform {
    let (mean, std) = convbn_zoo::Architecture::MobileNetV2.normalization();
    Transform { size, mean, std }
}

/// Images `indices` of `set` (mirrored where `flips` says) as a normalised batch.
pub fn images(set: &DetectionSet, indices: &[usize], flips: &[bool], device: &Device) -> Tensor<4> {
    let jitter: Vec<Jitter> = flips
        .iter()
        .map(|&flip| Jitter {
            flip,
            ..Jitter::default()
        })
        .collect();
    transform(set.images.width).batch(&set.images, indices, &jitter, device)
}

/// The FCOS targets of images `indices` (mirrored where `flips` says).
pub fn targets(set: &DetectionSet, indices: &[usize], flips: &[bool]) -> Vec<Targets> {
    let levels = levels(set.images.width);
    indices
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let flip = flips.get(k).copied().unwrap_or(false);
            fcos_targets(
                &levels,
                &set.network_boxes(i, flip),
                &set.labels[i],
                Some(CENTER_RADIUS),
            )
        })
        .collect()
}
