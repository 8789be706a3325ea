//! Multi-class detection scenes from real Fashion-MNIST items: each scene is a square grey
//! canvas with a few items pasted at random sizes and positions, their boxes exact (the
//! extent of each pasted item's visible pixels) and their labels the items' classes.
//!
//! Deterministic: scene `i` of a set is drawn from the stream `(seed, i)` alone, so a set is
//! the same on every machine and any scene can be regenerated on its own. Training scenes
//! come from Fashion-MNIST's training images, test scenes from its test images (a fixed
//! split; no item appears in both).

use convbn_train::data::ImageSet;
use convbn_train::rng::Rng;
use convbn_zoo::image::resize_bilinear;
use image::GrayImage;

use crate::boxes::Bbox;

/// How scenes are drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneConfig {
    /// Canvas side in pixels.
    pub size: usize,
    /// Fewest and most items per scene.
    pub items: (usize, usize),
    /// Smallest and largest item side in pixels (items are 28x28, resized by Pillow's bilinear
    /// filter, [`resize_bilinear`]).
    pub side: (usize, usize),
    /// Largest IoU allowed between two items' boxes (placements retried, then dropped).
    pub max_iou: f64,
    /// Pixels brighter than this belong to the item (its box is their extent).
    pub threshold: u8,
}

impl Default for SceneConfig {
    fn default() -> Self {
        Self {
            size: 128,
            items: (1, 4),
            side: (24, 64),
            max_iou: 0.1,
            threshold: 24,
        }
    }
}

/// One scene.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// Canvas side.
    pub size: usize,
    /// Grey pixels, row after row.
    pub pixels: Vec<u8>,
    /// The items' boxes.
    pub boxes: Vec<Bbox>,
    /// The items' classes.
    pub labels: Vec<usize>,
}

/// Draw scene `index` of the set `seed` from `items` (a grey image set).
pub fn scene(items: &ImageSet, seed: u64, index: u64, config: &SceneConfig) -> Scene {
    let mut rng = Rng::new(&[seed, index]);
    let n = config.size;
    let mut canvas = vec![0u8; n * n];
    let (mut boxes, mut labels) = (Vec::new(), Vec::new());
    let count = config.items.0 + rng.below(config.items.1 - config.items.0 + 1);
    let plane = items.height * items.width;
    for _ in 0..count {
        let item = rng.below(items.labels.len());
        let side = config.side.0 + rng.below(config.side.1 - config.side.0 + 1);
        let side = side.min(n);
        let source = GrayImage::from_raw(
            items.width as u32,
            items.height as u32,
            items.pixels[item * plane..(item + 1) * plane].to_vec(),
        )
        .expect("a plane of the set");
        let patch = resize_bilinear(&source, side as u32, side as u32)
            .expect("an item and its side are not empty");
        // Up to 20 placements whose box overlaps no earlier item too much.
        for _ in 0..20 {
            let (x0, y0) = (rng.below(n - side + 1), rng.below(n - side + 1));
            let Some(b) = extent(&patch, config.threshold) else {
                break;
            };
            let b = b.translate(-(x0 as f64), -(y0 as f64));
            if boxes.iter().any(|o: &Bbox| o.iou(b) > config.max_iou) {
                continue;
            }
            for (y, row) in patch.rows().enumerate() {
                for (x, p) in row.enumerate() {
                    let at = &mut canvas[(y0 + y) * n + x0 + x];
                    *at = (*at).max(p.0[0]);
                }
            }
            boxes.push(b);
            labels.push(items.labels[item]);
            break;
        }
    }
    Scene {
        size: n,
        pixels: canvas,
        boxes,
        labels,
    }
}

/// The box of the pixels above `threshold` (`None` when there are none).
fn extent(patch: &GrayImage, threshold: u8) -> Option<Bbox> {
    let (mut x1, mut y1, mut x2, mut y2) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in patch.enumerate_pixels() {
        if p.0[0] > threshold {
            (x1, y1, x2, y2) = (x1.min(x), y1.min(y), x2.max(x + 1), y2.max(y + 1));
        }
    }
    (x1 < x2).then(|| Bbox::new(x1.into(), y1.into(), x2.into(), y2.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny "dataset": item k is a filled square of side 10 + k at the middle of 28x28.
    fn items() -> ImageSet {
        let mut pixels = Vec::new();
        for k in 0..3usize {
            for y in 0..28usize {
                for x in 0..28usize {
                    let half = (10 + k) / 2;
                    let inside =
                        (14 - half..14 + half).contains(&x) && (14 - half..14 + half).contains(&y);
                    pixels.push(if inside { 200 } else { 0 });
                }
            }
        }
        ImageSet {
            channels: 1,
            height: 28,
            width: 28,
            pixels,
            labels: vec![0, 1, 2],
            classes: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn scenes_are_deterministic_with_exact_boxes() {
        let set = items();
        let config = SceneConfig::default();
        for i in 0..20 {
            let s = scene(&set, 7, i, &config);
            assert_eq!(s, scene(&set, 7, i, &config), "scene {i} repeats");
            assert!(!s.boxes.is_empty() && s.boxes.len() <= 4);
            for (k, b) in s.boxes.iter().enumerate() {
                // Inside the canvas and tight: each of its four border lines holds a pixel
                // above the threshold.
                assert!(b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= 128.0 && b.y2 <= 128.0);
                let [x1, y1, x2, y2] = [b.x1, b.y1, b.x2, b.y2].map(|v| v as usize);
                let lit = |x: usize, y: usize| s.pixels[y * 128 + x] > config.threshold;
                assert!((x1..x2).any(|x| lit(x, y1)) && (x1..x2).any(|x| lit(x, y2 - 1)));
                assert!((y1..y2).any(|y| lit(x1, y)) && (y1..y2).any(|y| lit(x2 - 1, y)));
                for o in &s.boxes[..k] {
                    assert!(o.iou(*b) <= config.max_iou);
                }
            }
        }
        assert_ne!(scene(&set, 7, 0, &config), scene(&set, 8, 0, &config));
    }
}
