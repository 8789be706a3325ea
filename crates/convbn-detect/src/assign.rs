//! FCOS target assignment (Tian et al. 2019): every location of every feature level is a
//! candidate; it is assigned the ground-truth box it lies in (near the centre, with centre
//! sampling) whose largest regression distance fits the level's range, the smallest such box
//! when several do.

use crate::boxes::Bbox;

/// One feature level: its stride and size, and the range of regression distances it handles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    /// Pixels per feature cell.
    pub stride: u32,
    /// Feature map height.
    pub height: usize,
    /// Feature map width.
    pub width: usize,
    /// `max(l, t, r, b)` must lie in `[lo, hi)` for a box to be assigned at this level.
    pub range: (f64, f64),
}

impl Level {
    /// A level of `height` x `width` cells of `stride` pixels handling distances in `range`.
    pub fn new(stride: u32, height: usize, width: usize, range: (f64, f64)) -> Self {
        Self {
            stride,
            height,
            width,
            range,
        }
    }
}

/// The targets of all locations, level after level, row-major within a level.
#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    /// Class index, or `None` for background.
    pub labels: Vec<Option<usize>>,
    /// Distances from the location to the box's left, top, right and bottom edges (0 for
    /// background).
    pub ltrb: Vec<[f64; 4]>,
    /// `sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))` (0 for background).
    pub centerness: Vec<f64>,
}

/// The image coordinates of cell `(i, j)`'s location: its centre.
pub fn location(stride: u32, i: usize, j: usize) -> (f64, f64) {
    let s = f64::from(stride);
    ((j as f64 + 0.5) * s, (i as f64 + 0.5) * s)
}

/// Assign `boxes` (with `labels`) to the locations of `levels`. With `center_radius`, a
/// location must also lie within `radius * stride` of the box centre (FCOS's centre
/// sampling).
pub fn fcos_targets(
    levels: &[Level],
    boxes: &[Bbox],
    labels: &[usize],
    center_radius: Option<f64>,
) -> Targets {
    let total: usize = levels.iter().map(|l| l.height * l.width).sum();
    let mut t = Targets {
        labels: Vec::with_capacity(total),
        ltrb: Vec::with_capacity(total),
        centerness: Vec::with_capacity(total),
    };
    for level in levels {
        for i in 0..level.height {
            for j in 0..level.width {
                let (x, y) = location(level.stride, i, j);
                let mut best: Option<(f64, usize, [f64; 4])> = None;
                for (k, b) in boxes.iter().enumerate() {
                    let d = [x - b.x1, y - b.y1, b.x2 - x, b.y2 - y];
                    if d.iter().any(|&v| v <= 0.0) {
                        continue;
                    }
                    if let Some(r) = center_radius {
                        let reach = r * f64::from(level.stride);
                        let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
                        if (x - cx).abs() >= reach || (y - cy).abs() >= reach {
                            continue;
                        }
                    }
                    let m = d.iter().copied().fold(0.0, f64::max);
                    if m < level.range.0 || m >= level.range.1 {
                        continue;
                    }
                    if best.is_none_or(|(area, _, _)| b.area() < area) {
                        best = Some((b.area(), k, d));
                    }
                }
                match best {
                    Some((_, k, d)) => {
                        let [l, top, r, bottom] = d;
                        let c = (l.min(r) / l.max(r) * top.min(bottom) / top.max(bottom)).sqrt();
                        t.labels.push(Some(labels[k]));
                        t.ltrb.push(d);
                        t.centerness.push(c);
                    }
                    None => {
                        t.labels.push(None);
                        t.ltrb.push([0.0; 4]);
                        t.centerness.push(0.0);
                    }
                }
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels() -> [Level; 2] {
        [
            Level::new(8, 8, 8, (0.0, 32.0)),
            Level::new(16, 4, 4, (32.0, f64::INFINITY)),
        ]
    }

    #[test]
    fn locations_get_the_smallest_box_of_their_level() {
        // A small box (level 0) inside a large one (level 1 only).
        let small = Bbox::new(16.0, 16.0, 40.0, 40.0);
        let large = Bbox::new(0.0, 0.0, 64.0, 64.0);
        let t = fcos_targets(&levels(), &[large, small], &[3, 5], None);
        assert_eq!(t.labels.len(), 64 + 16);
        // Level 0, cell (3, 3): location (28, 28) is inside both; only the small box fits
        // the level's range (max distance 12 < 32; the large box's 36 does not).
        let k = 3 * 8 + 3;
        assert_eq!(t.labels[k], Some(5));
        assert_eq!(t.ltrb[k], [12.0, 12.0, 12.0, 12.0]);
        assert!((t.centerness[k] - 1.0).abs() < 1e-12);
        // Level 0, cell (0, 0): location (4, 4) is in the large box only, whose max distance
        // 60 belongs to level 1: background here.
        assert_eq!(t.labels[0], None);
        // Level 1, cell (1, 1): location (24, 24), large box, distances (24, 24, 40, 40).
        let k = 64 + 4 + 1;
        assert_eq!(t.labels[k], Some(3));
        assert_eq!(t.ltrb[k], [24.0, 24.0, 40.0, 40.0]);
        assert!((t.centerness[k] - 0.6).abs() < 1e-12);
        // Background far away.
        assert_eq!(t.labels[7 * 8 + 7], None);
    }

    #[test]
    fn centre_sampling_keeps_only_locations_near_the_centre() {
        let b = Bbox::new(0.0, 0.0, 60.0, 60.0);
        let lv = [Level::new(8, 8, 8, (0.0, f64::INFINITY))];
        let all = fcos_targets(&lv, &[b], &[0], None);
        let near = fcos_targets(&lv, &[b], &[0], Some(1.5));
        let count = |t: &Targets| t.labels.iter().filter(|l| l.is_some()).count();
        // Inside: locations 4..=60 minus the edge: cells 0..=6 (x = 4..52) and 7 (60 is on
        // the edge: excluded) -> 7 x 7 = 49; near the centre (30, 30) within 12: x in 20, 28,
        // 36 -> 3 x 3 = 9.
        assert_eq!(count(&all), 49);
        assert_eq!(count(&near), 9);
    }
}
