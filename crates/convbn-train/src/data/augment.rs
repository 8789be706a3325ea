//! From 8-bit images to a normalised `[N, 3, S, S]` batch: optional random translation and
//! horizontal flip (training), Pillow's bilinear resize to `S`, grey to RGB,
//! `(x/255 - mean) / std`.
//!
//! Every random choice comes from [`Rng`] streams named by `(seed, epoch, position)`, so a
//! batch is a pure function of its position in the run.

use burn::tensor::{Device, Tensor, TensorData};
use convbn_zoo::image::resize_bilinear;
use image::{GrayImage, Luma};

use crate::data::ImageSet;
use crate::rng::Rng;

/// How images are turned into network inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    /// Output side `S` (images are resized to `S` x `S`).
    pub size: usize,
    /// Per-channel mean on `[0, 1]` RGB.
    pub mean: [f32; 3],
    /// Per-channel standard deviation on `[0, 1]` RGB.
    pub std: [f32; 3],
}

/// A random translation and flip, in source pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Jitter {
    /// Horizontal shift (content moves right for positive values).
    pub dx: i64,
    /// Vertical shift (content moves down for positive values).
    pub dy: i64,
    /// Mirror left-right.
    pub flip: bool,
}

impl Jitter {
    /// The jitter of the image at `position` of `epoch`'s data order in a run seeded with
    /// `seed`: a pure function of the three, so every trainer and any number of workers
    /// augment a given batch alike.
    pub fn at(seed: u64, epoch: usize, position: usize, height: usize, width: usize) -> Self {
        let mut rng = Rng::new(&[seed, epoch as u64, position as u64, 0xA06]);
        Self::draw(&mut rng, height, width)
    }

    /// The random-crop-with-padding and flip augmentation: shifts of up to 1/8 of the image
    /// side in each direction (3 pixels for 28x28), edge pixels repeated, flip with
    /// probability 1/2.
    pub fn draw(rng: &mut Rng, height: usize, width: usize) -> Self {
        let (py, px) = ((height / 8) as i64, (width / 8) as i64);
        Self {
            dx: rng.range_inclusive(-px, px),
            dy: rng.range_inclusive(-py, py),
            flip: rng.coin(),
        }
    }
}

impl Transform {
    /// Render images `indices` of `set` as one batch; `jitter[i]` applies to image `i`
    /// (pass an empty slice for no augmentation).
    pub fn batch(
        &self,
        set: &ImageSet,
        indices: &[usize],
        jitter: &[Jitter],
        device: &Device,
    ) -> Tensor<4> {
        let s = self.size;
        let mut out = vec![0f32; indices.len() * 3 * s * s];
        for (k, &i) in indices.iter().enumerate() {
            let j = jitter.get(k).copied().unwrap_or_default();
            self.render(set, i, j, &mut out[k * 3 * s * s..(k + 1) * 3 * s * s]);
        }
        Tensor::from_data(TensorData::new(out, [indices.len(), 3, s, s]), device)
    }

    /// Render image `i` of `set` into `out` (`3 * size * size` values), as torchvision's
    /// training transform on a PIL image: the jitter moves the 8-bit source pixels
    /// (`RandomHorizontalFlip`, then `RandomCrop(padding, padding_mode="edge")`: edge pixels
    /// repeat), [`resize_bilinear`] resizes each channel to `size` x `size` (Pillow's bilinear,
    /// torchvision's `Resize`), then `ToTensor` and `Normalize`; grey repeats to RGB.
    pub fn render(&self, set: &ImageSet, i: usize, jitter: Jitter, out: &mut [f32]) {
        let (h, w, s) = (set.height, set.width, self.size);
        let src = set.image(i);
        let moved = |plane: &[u8]| -> GrayImage {
            GrayImage::from_fn(w as u32, h as u32, |x, y| {
                let shift = |o: u32, by: i64, n: usize| (o as i64 - by).clamp(0, n as i64 - 1);
                let (sx, sy) = (shift(x, jitter.dx, w), shift(y, jitter.dy, h) as usize);
                let sx = if jitter.flip {
                    w - 1 - sx as usize
                } else {
                    sx as usize
                };
                Luma([plane[sy * w + sx]])
            })
        };
        let planes: Vec<Vec<u8>> = (0..set.channels)
            .map(|c| {
                let resized =
                    resize_bilinear(&moved(&src[c * h * w..][..h * w]), s as u32, s as u32)
                        .expect("an image set's images are not empty");
                resized.into_raw()
            })
            .collect();
        for c in 0..3 {
            let (mean, std) = (self.mean[c], self.std[c]);
            let plane = &planes[c % set.channels];
            for (o, &p) in out[c * s * s..][..s * s].iter_mut().zip(plane) {
                *o = (p as f32 / 255.0 - mean) / std;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pixels: Vec<u8>, h: usize, w: usize) -> ImageSet {
        ImageSet {
            channels: 1,
            height: h,
            width: w,
            pixels,
            labels: vec![0],
            classes: vec!["x".into()],
        }
    }

    const PLAIN: Transform = Transform {
        size: 4,
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    fn render(t: &Transform, s: &ImageSet, j: Jitter) -> Vec<f32> {
        let mut out = vec![0.0; 3 * t.size * t.size];
        t.render(s, 0, j, &mut out);
        out
    }

    #[test]
    fn identity_size_copies_pixels_to_three_channels() {
        let px: Vec<u8> = (0..16).map(|v| v * 10).collect();
        let out = render(&PLAIN, &set(px.clone(), 4, 4), Jitter::default());
        for c in 0..3 {
            for (o, p) in out[c * 16..(c + 1) * 16].iter().zip(&px) {
                assert!((o - *p as f32 / 255.0).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn flip_mirrors_and_shift_moves_content() {
        let px: Vec<u8> = (0..16).map(|v| v * 10).collect();
        let s = set(px, 4, 4);
        let plain = render(&PLAIN, &s, Jitter::default());
        let flipped = render(
            &PLAIN,
            &s,
            Jitter {
                flip: true,
                ..Default::default()
            },
        );
        for y in 0..4 {
            for x in 0..4 {
                assert_eq!(flipped[y * 4 + x], plain[y * 4 + 3 - x]);
            }
        }
        let shifted = render(
            &PLAIN,
            &s,
            Jitter {
                dx: 1,
                ..Default::default()
            },
        );
        for y in 0..4 {
            assert_eq!(shifted[y * 4], plain[y * 4], "edge repeated");
            for x in 1..4 {
                assert_eq!(shifted[y * 4 + x], plain[y * 4 + x - 1]);
            }
        }
    }

    #[test]
    fn upscaling_interpolates_and_normalises() {
        let s = set(vec![0, 255, 0, 255], 2, 2);
        let t = Transform {
            size: 4,
            mean: [0.5; 3],
            std: [0.5; 3],
        };
        let out = render(&t, &s, Jitter::default());
        // Columns sample x = -0.25, 0.25, 0.75, 1.25 -> clamped 0, 0.25, 0.75, 1 of the way
        // from 0 to 255: 0, 63.75, 191.25, 255, rounded to 8 bits as Pillow does.
        for (o, e) in out[..4].iter().zip([0.0, 64.0, 191.0, 255.0]) {
            let e = (e / 255.0 - 0.5) / 0.5;
            assert!((o - e).abs() < 1e-6, "{o} vs {e}");
        }
    }
}
