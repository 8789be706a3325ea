//! Large annotated images (aerial scenes) cut into overlapping square tiles, boxes translated
//! and clipped to each tile; boxes mostly cut away, or reduced to slivers, are dropped.

use crate::boxes::Bbox;
use crate::samples::Sample;

/// How images are tiled.
#[derive(Clone, Debug, PartialEq)]
pub struct TileConfig {
    /// Tile side in pixels.
    pub size: u32,
    /// Pixels shared by neighbouring tiles.
    pub overlap: u32,
    /// Keep a clipped box only if at least this fraction of its area is in the tile.
    pub min_visible: f64,
    /// Keep a clipped box only if both its sides are at least this many pixels.
    pub min_side: f64,
}

impl Default for TileConfig {
    fn default() -> Self {
        Self {
            size: 256,
            overlap: 32,
            min_visible: 0.5,
            min_side: 4.0,
        }
    }
}

/// One tile of an image.
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    /// Left edge in the image.
    pub x: u32,
    /// Top edge in the image.
    pub y: u32,
    /// Width (the tile size, or the image's width when smaller).
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Boxes in tile coordinates.
    pub boxes: Vec<Bbox>,
    /// Their class indices.
    pub labels: Vec<usize>,
}

/// Tile origins along an axis of `len` pixels: a stride of `size - overlap`, the last tile
/// flush with the end, so every pixel is covered and no tile leaves the image.
pub fn origins(len: u32, size: u32, overlap: u32) -> Vec<u32> {
    if len <= size {
        return vec![0];
    }
    let stride = size.saturating_sub(overlap).max(1);
    let mut v: Vec<u32> = (0..)
        .map(|i| i * stride)
        .take_while(|&o| o + size < len)
        .collect();
    v.push(len - size);
    v
}

/// The tiles of `sample` with their boxes.
pub fn tiles(sample: &Sample, config: &TileConfig) -> Vec<Tile> {
    let (w, h) = (sample.width, sample.height);
    let mut out = Vec::new();
    for &y in &origins(h, config.size, config.overlap) {
        for &x in &origins(w, config.size, config.overlap) {
            let (tw, th) = (config.size.min(w), config.size.min(h));
            let mut tile = Tile {
                x,
                y,
                width: tw,
                height: th,
                boxes: Vec::new(),
                labels: Vec::new(),
            };
            for (b, &label) in sample.boxes.iter().zip(&sample.labels) {
                let moved = b.translate(x.into(), y.into());
                let clipped = moved.clip(tw.into(), th.into());
                let visible = if b.area() > 0.0 {
                    clipped.area() / b.area()
                } else {
                    0.0
                };
                if visible >= config.min_visible
                    && clipped.width() >= config.min_side
                    && clipped.height() >= config.min_side
                {
                    tile.boxes.push(clipped);
                    tile.labels.push(label);
                }
            }
            out.push(tile);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_cover_the_axis_without_leaving_it() {
        assert_eq!(origins(200, 256, 32), vec![0]);
        assert_eq!(origins(256, 256, 32), vec![0]);
        assert_eq!(origins(400, 256, 32), vec![0, 144]);
        assert_eq!(origins(1000, 256, 32), vec![0, 224, 448, 672, 744]);
        for len in [257, 999, 2299, 2472] {
            let o = origins(len, 256, 32);
            assert_eq!(*o.last().unwrap() + 256, len);
            assert!(o.windows(2).all(|p| p[1] > p[0] && p[1] - p[0] <= 224));
        }
    }

    #[test]
    fn boxes_are_translated_clipped_and_slivers_dropped() {
        let sample = Sample {
            image: "x.png".into(),
            width: 400,
            height: 300,
            boxes: vec![
                Bbox::new(10.0, 10.0, 40.0, 30.0),     // inside the first tile only
                Bbox::new(240.0, 20.0, 280.0, 60.0),   // across the vertical border
                Bbox::new(254.0, 100.0, 300.0, 120.0), // 2 px sliver in the first tile
            ],
            labels: vec![0, 1, 2],
        };
        let t = tiles(&sample, &TileConfig::default());
        // Tiles at x 0 and 144, y 0 and 44.
        assert_eq!(t.len(), 4);
        let first = &t[0];
        assert_eq!((first.x, first.y), (0, 0));
        assert_eq!(first.boxes[0], Bbox::new(10.0, 10.0, 40.0, 30.0));
        // 16 of 40 px visible: 40 % < 50 %, dropped; the sliver too.
        assert_eq!(first.labels, vec![0]);
        let second = &t[1];
        assert_eq!((second.x, second.y), (144, 0));
        assert_eq!(second.labels, vec![1, 2]);
        assert_eq!(second.boxes[0], Bbox::new(96.0, 20.0, 136.0, 60.0));
    }
}
