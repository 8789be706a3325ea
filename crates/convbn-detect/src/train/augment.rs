//! Training augmentation that keeps boxes right: the eight symmetries of the square (a
//! horizontal flip only for ordinary photos; all eight for aerial images, which have no up or
//! left) and, for aerial images, brightness, contrast and per-channel colour jitter.
//!
//! Every choice comes from an [`Rng`] stream named by `(seed, epoch, position)`, so a batch is
//! a pure function of its place in the run.

use convbn_train::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::boxes::Bbox;

/// Which augmentation a run uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// None.
    None,
    /// Horizontal flips with probability 1/2.
    #[default]
    Flip,
    /// Any of the 8 rotations/flips, brightness and contrast in [0.8, 1.25], channel gains in
    /// [0.9, 1.1].
    Aerial,
}

/// One symmetry of the square `[0, s]^2`: transpose (swap x and y), then mirror x, then
/// mirror y.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Orientation {
    /// Swap x and y first.
    pub transpose: bool,
    /// Then `x -> s - x`.
    pub hflip: bool,
    /// Then `y -> s - y`.
    pub vflip: bool,
}

impl Orientation {
    /// Where point `(x, y)` of the source goes.
    pub fn forward(self, (x, y): (f64, f64), s: f64) -> (f64, f64) {
        let (x, y) = if self.transpose { (y, x) } else { (x, y) };
        (
            if self.hflip { s - x } else { x },
            if self.vflip { s - y } else { y },
        )
    }

    /// Where output point `(x, y)` comes from in the source.
    pub fn backward(self, (x, y): (f64, f64), s: f64) -> (f64, f64) {
        let (x, y) = (
            if self.hflip { s - x } else { x },
            if self.vflip { s - y } else { y },
        );
        if self.transpose { (y, x) } else { (x, y) }
    }

    /// A box of the source, in the output.
    pub fn apply(self, b: Bbox, s: f64) -> Bbox {
        let (ax, ay) = self.forward((b.x1, b.y1), s);
        let (bx, by) = self.forward((b.x2, b.y2), s);
        Bbox::new(ax.min(bx), ay.min(by), ax.max(bx), ay.max(by))
    }
}

/// What happens to one training image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augmentation {
    /// Geometry.
    pub orientation: Orientation,
    /// Multiplier of every pixel (on `[0, 1]`).
    pub brightness: f32,
    /// Multiplier of the distance to mid-grey.
    pub contrast: f32,
    /// Per-channel multipliers.
    pub gains: [f32; 3],
}

impl Default for Augmentation {
    fn default() -> Self {
        Self {
            orientation: Orientation::default(),
            brightness: 1.0,
            contrast: 1.0,
            gains: [1.0; 3],
        }
    }
}

impl Augment {
    /// The augmentation of the image at `position` of `epoch`'s data order in a run seeded
    /// with `seed`: a pure function of the three, so every trainer and any number of workers
    /// augment a given batch alike.
    pub fn at(self, seed: u64, epoch: usize, position: usize) -> Augmentation {
        let mut rng = Rng::new(&[seed, epoch as u64, position as u64, 0xF11]);
        self.draw(&mut rng)
    }

    /// Draw the augmentation of one image.
    pub fn draw(self, rng: &mut Rng) -> Augmentation {
        let uniform = |rng: &mut Rng, lo: f32, hi: f32| {
            lo + (hi - lo) * (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32
        };
        match self {
            Augment::None => Augmentation::default(),
            Augment::Flip => Augmentation {
                orientation: Orientation {
                    hflip: rng.coin(),
                    ..Orientation::default()
                },
                ..Augmentation::default()
            },
            Augment::Aerial => Augmentation {
                orientation: Orientation {
                    transpose: rng.coin(),
                    hflip: rng.coin(),
                    vflip: rng.coin(),
                },
                brightness: uniform(rng, 0.8, 1.25),
                contrast: uniform(rng, 0.8, 1.25),
                gains: [(); 3].map(|_| uniform(rng, 0.9, 1.1)),
            },
        }
    }
}

impl Augmentation {
    /// A pixel value on `[0, 1]` of channel `c`, jittered (exactly `v` without jitter).
    pub fn colour(&self, v: f32, c: usize) -> f32 {
        if self.contrast == 1.0 && self.brightness == 1.0 && self.gains[c] == 1.0 {
            return v;
        }
        (((v - 0.5) * self.contrast + 0.5) * self.brightness * self.gains[c]).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_eight_orientations_move_boxes_with_their_pixels() {
        let s = 10usize;
        // A lit 3x2 block at x 2..5, y 6..8 of a 10x10 image.
        let b = Bbox::new(2.0, 6.0, 5.0, 8.0);
        let lit = |x: usize, y: usize| (2..5).contains(&x) && (6..8).contains(&y);
        for k in 0..8 {
            let o = Orientation {
                transpose: k & 1 == 1,
                hflip: k & 2 == 2,
                vflip: k & 4 == 4,
            };
            let moved = o.apply(b, s as f64);
            assert!((moved.area() - b.area()).abs() < 1e-12);
            for y in 0..s {
                for x in 0..s {
                    // Output pixel (x, y) shows source pixel `backward` of its centre.
                    let (sx, sy) = o.backward((x as f64 + 0.5, y as f64 + 0.5), s as f64);
                    let inside = (x as f64) >= moved.x1
                        && (x as f64) < moved.x2
                        && (y as f64) >= moved.y1
                        && (y as f64) < moved.y2;
                    assert_eq!(lit(sx as usize, sy as usize), inside, "{o:?} at ({x}, {y})");
                }
            }
            let back = o.backward(o.forward((1.5, 7.25), 10.0), 10.0);
            assert_eq!(back, (1.5, 7.25));
        }
    }

    #[test]
    fn draws_are_deterministic_and_in_range() {
        let a = Augment::Aerial.draw(&mut Rng::new(&[1, 2]));
        assert_eq!(a, Augment::Aerial.draw(&mut Rng::new(&[1, 2])));
        for i in 0..200 {
            let a = Augment::Aerial.draw(&mut Rng::new(&[i]));
            assert!((0.8..=1.25).contains(&a.brightness) && (0.8..=1.25).contains(&a.contrast));
            assert!(a.gains.iter().all(|g| (0.9..=1.1).contains(g)));
        }
        assert_eq!(
            Augment::None.draw(&mut Rng::new(&[3])),
            Augmentation::default()
        );
        let f = Augment::Flip.draw(&mut Rng::new(&[3]));
        assert!(!f.orientation.transpose && !f.orientation.vflip && f.brightness == 1.0);
    }
}
