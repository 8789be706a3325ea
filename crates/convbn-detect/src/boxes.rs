//! Axis-aligned boxes in pixels: conversions, IoU, the geometric transforms of data
//! augmentation (resize, horizontal flip, clipping) and non-maximum suppression.
//!
//! Coordinates are continuous pixel edges: a box `[x1, y1, x2, y2]` covers the pixels whose
//! centres `(i + 0.5, j + 0.5)` lie inside it, so the box of pixel columns `a..b` is
//! `[a, b)` and a horizontal flip of an image `W` wide maps `x` to `W - x`.

/// A box `[x1, y1, x2, y2]` with `x1 <= x2`, `y1 <= y2`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bbox {
    /// Left edge.
    pub x1: f64,
    /// Top edge.
    pub y1: f64,
    /// Right edge.
    pub x2: f64,
    /// Bottom edge.
    pub y2: f64,
}

impl Bbox {
    /// From corners.
    pub fn new(x1: f64, y1: f64, x2: f64, y2: f64) -> Self {
        Self { x1, y1, x2, y2 }
    }

    /// From COCO's `[x, y, width, height]`.
    pub fn from_xywh([x, y, w, h]: [f64; 4]) -> Self {
        Self::new(x, y, x + w, y + h)
    }

    /// As COCO's `[x, y, width, height]`.
    pub fn to_xywh(self) -> [f64; 4] {
        [self.x1, self.y1, self.width(), self.height()]
    }

    /// `x2 - x1`.
    pub fn width(self) -> f64 {
        self.x2 - self.x1
    }

    /// `y2 - y1`.
    pub fn height(self) -> f64 {
        self.y2 - self.y1
    }

    /// Width times height (0 for an empty box).
    pub fn area(self) -> f64 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// Intersection over union (0 when either is empty).
    pub fn iou(self, other: Bbox) -> f64 {
        let w = self.x2.min(other.x2) - self.x1.max(other.x1);
        let h = self.y2.min(other.y2) - self.y1.max(other.y1);
        if w <= 0.0 || h <= 0.0 {
            return 0.0;
        }
        let inter = w * h;
        inter / (self.area() + other.area() - inter)
    }

    /// The box in an image resized by `sx` horizontally and `sy` vertically.
    pub fn resize(self, sx: f64, sy: f64) -> Self {
        Self::new(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)
    }

    /// The box in an image `width` pixels wide, mirrored left to right.
    pub fn hflip(self, width: f64) -> Self {
        Self::new(width - self.x2, self.y1, width - self.x1, self.y2)
    }

    /// The box clipped to an image of `width` x `height`.
    pub fn clip(self, width: f64, height: f64) -> Self {
        Self::new(
            self.x1.clamp(0.0, width),
            self.y1.clamp(0.0, height),
            self.x2.clamp(0.0, width),
            self.y2.clamp(0.0, height),
        )
    }

    /// The box shifted by `(-dx, -dy)`: its coordinates in a crop whose top-left is `(dx, dy)`.
    pub fn translate(self, dx: f64, dy: f64) -> Self {
        Self::new(self.x1 - dx, self.y1 - dy, self.x2 - dx, self.y2 - dy)
    }

    /// Finite, `x1 <= x2` and `y1 <= y2`.
    pub fn is_valid(self) -> bool {
        [self.x1, self.y1, self.x2, self.y2]
            .iter()
            .all(|v| v.is_finite())
            && self.x1 <= self.x2
            && self.y1 <= self.y2
    }
}

/// Greedy non-maximum suppression: indices of the boxes kept, highest score first; a box is
/// dropped when its IoU with a kept box of higher score exceeds `iou_threshold`.
pub fn nms(boxes: &[Bbox], scores: &[f64], iou_threshold: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len().min(scores.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept
            .iter()
            .all(|&k| boxes[k].iou(boxes[i]) <= iou_threshold)
        {
            kept.push(i);
        }
    }
    kept
}

/// [`nms`] per class: boxes of different classes never suppress each other. Indices kept,
/// highest score first.
pub fn batched_nms(
    boxes: &[Bbox],
    scores: &[f64],
    classes: &[usize],
    iou_threshold: f64,
) -> Vec<usize> {
    let mut by_class: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &c) in classes
        .iter()
        .enumerate()
        .take(boxes.len().min(scores.len()))
    {
        by_class.entry(c).or_default().push(i);
    }
    let mut kept: Vec<usize> = Vec::new();
    for members in by_class.values() {
        let b: Vec<Bbox> = members.iter().map(|&i| boxes[i]).collect();
        let s: Vec<f64> = members.iter().map(|&i| scores[i]).collect();
        kept.extend(nms(&b, &s, iou_threshold).into_iter().map(|j| members[j]));
    }
    kept.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image of `w` x `h` bytes with the pixels inside `b` (by centre) set.
    fn paint(w: usize, h: usize, b: Bbox) -> Vec<Vec<u8>> {
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| {
                        let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
                        u8::from(cx > b.x1 && cx < b.x2 && cy > b.y1 && cy < b.y2)
                    })
                    .collect()
            })
            .collect()
    }

    /// The box of the set pixels.
    fn extent(img: &[Vec<u8>]) -> Bbox {
        let (mut x1, mut y1, mut x2, mut y2) = (usize::MAX, usize::MAX, 0, 0);
        for (y, row) in img.iter().enumerate() {
            for (x, &v) in row.iter().enumerate() {
                if v != 0 {
                    (x1, y1, x2, y2) = (x1.min(x), y1.min(y), x2.max(x + 1), y2.max(y + 1));
                }
            }
        }
        Bbox::new(x1 as f64, y1 as f64, x2 as f64, y2 as f64)
    }

    /// Nearest-neighbour resize, sampling at pixel centres (as image resizers do).
    fn resize(img: &[Vec<u8>], w: usize, h: usize) -> Vec<Vec<u8>> {
        let (sw, sh) = (img[0].len() as f64 / w as f64, img.len() as f64 / h as f64);
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| {
                        let sx = ((x as f64 + 0.5) * sw) as usize;
                        let sy = ((y as f64 + 0.5) * sh) as usize;
                        img[sy][sx]
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn boxes_follow_their_pixels_under_resize_and_flip() {
        let b = Bbox::new(5.0, 3.0, 17.0, 11.0);
        let img = paint(24, 16, b);
        assert_eq!(extent(&img), b);
        // Flip: mirror every row.
        let flipped: Vec<Vec<u8>> = img
            .iter()
            .map(|r| r.iter().rev().copied().collect())
            .collect();
        assert_eq!(extent(&flipped), b.hflip(24.0));
        assert_eq!(b.hflip(24.0).hflip(24.0), b);
        // Resize up (x2, x1.5) and down (/2, /4): the painted box within a pixel.
        for (w, h) in [(48, 24), (12, 4), (36, 16)] {
            let moved = b.resize(w as f64 / 24.0, h as f64 / 16.0);
            let got = extent(&resize(&img, w, h));
            for (p, q) in [
                (got.x1, moved.x1),
                (got.y1, moved.y1),
                (got.x2, moved.x2),
                (got.y2, moved.y2),
            ] {
                assert!((p - q).abs() <= 1.0, "{w}x{h}: {got:?} vs {moved:?}");
            }
        }
        assert_eq!(Bbox::from_xywh(b.to_xywh()), b);
        let clipped = Bbox::new(-3.0, 2.0, 30.0, 20.0).clip(24.0, 16.0);
        assert_eq!(clipped, Bbox::new(0.0, 2.0, 24.0, 16.0));
    }

    #[test]
    fn iou_and_nms() {
        let a = Bbox::new(0.0, 0.0, 10.0, 10.0);
        let b = Bbox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(b) - 50.0 / 150.0).abs() < 1e-12);
        assert_eq!(a.iou(Bbox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let boxes = [
            a,
            b,
            Bbox::new(1.0, 1.0, 10.0, 10.0),
            Bbox::new(20.0, 20.0, 30.0, 30.0),
        ];
        let scores = [0.9, 0.8, 0.95, 0.1];
        // 2 (0.95) suppresses 0 (IoU 0.81); 1 overlaps 2 by 0.38 < 0.5: kept.
        assert_eq!(nms(&boxes, &scores, 0.5), vec![2, 1, 3]);
        // Per class: 0 and 2 in different classes both survive.
        assert_eq!(
            batched_nms(&boxes, &scores, &[0, 0, 1, 0], 0.5),
            vec![2, 0, 1, 3]
        );
    }
}
