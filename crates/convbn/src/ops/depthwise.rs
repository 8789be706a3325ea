//! Direct depthwise-convolution gradients (2-d, one filter per channel) on contiguous f32
//! buffers, for the CPU backend.
//!
//! burn computes a depthwise weight gradient as a grouped convolution of the transposed input
//! and its input gradient as a grouped transposed convolution, both far slower than the
//! little arithmetic they need (9 multiply-adds per output element for 3x3): in MobileNetV2
//! (batch 8, 224x224) they took about a third of a Tune training step. Here each channel's
//! plane is walked directly, one rayon task per channel (weight gradient) or per plane (input
//! gradient), rows vectorised when the stride is 1.

use std::ops::Range;

use rayon::prelude::*;

/// The shapes of one depthwise convolution: `x` `[N, C, H, W]`, `grad` `[N, C, OH, OW]`,
/// weight `[C, 1, KH, KW]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Depthwise {
    pub batch: usize,
    pub channels: usize,
    pub input: [usize; 2],
    pub output: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Padding at the start of each axis.
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl Depthwise {
    /// The output positions `o` along `axis` whose input position `o * stride + k * dilation -
    /// padding` for kernel offset `k` lies inside the input, and that position for the first.
    fn span(&self, axis: usize, k: usize) -> Option<(usize, usize, usize)> {
        let (s, off) = (self.stride[axis], k * self.dilation[axis]);
        let (pad, len) = (self.padding[axis], self.input[axis]);
        // o * s + off - pad must lie in [0, len).
        let lo = pad.saturating_sub(off).div_ceil(s);
        let last = (len - 1 + pad).checked_sub(off)? / s;
        let hi = (last + 1).min(self.output[axis]);
        (lo < hi).then(|| (lo, hi, lo * s + off - pad))
    }

    /// Every (kernel tap, output row) pair whose row reads the input: `visit(tap, outputs,
    /// input_row, input_col)` with `tap = i * kw + j`, `outputs` the plane offsets of the
    /// output row's columns that land inside the input, and the input row and first input
    /// column they read (later columns step by the horizontal stride).
    fn for_each_row(&self, mut visit: impl FnMut(usize, Range<usize>, usize, usize)) {
        let (ow, kw) = (self.output[1], self.kernel[1]);
        for i in 0..self.kernel[0] {
            let Some((y0, y1, iy0)) = self.span(0, i) else {
                continue;
            };
            for j in 0..kw {
                let Some((x0, x1, ix0)) = self.span(1, j) else {
                    continue;
                };
                for (r, oy) in (y0..y1).enumerate() {
                    let iy = iy0 + r * self.stride[0];
                    visit(i * kw + j, oy * ow + x0..oy * ow + x1, iy, ix0);
                }
            }
        }
    }

    /// `dW[c, 0, i, j] = sum_{n, oy, ox} G[n, c, oy, ox] * X[n, c, oy*sy + i*dy - py, ...]`.
    pub fn weight_gradient(&self, x: &[f32], grad: &[f32]) -> Vec<f32> {
        let [h, w] = self.input;
        let [oh, ow] = self.output;
        let taps = self.kernel[0] * self.kernel[1];
        let sx = self.stride[1];
        let mut out = vec![0.0f32; self.channels * taps];
        out.par_chunks_mut(taps).enumerate().for_each(|(c, dw)| {
            let mut acc = vec![0.0f64; taps];
            for n in 0..self.batch {
                let plane = n * self.channels + c;
                let xp = &x[plane * h * w..(plane + 1) * h * w];
                let gp = &grad[plane * oh * ow..(plane + 1) * oh * ow];
                self.for_each_row(|tap, outputs, iy, ix0| {
                    let grow = &gp[outputs];
                    let xrow = &xp[iy * w..(iy + 1) * w];
                    let sum: f32 = if sx == 1 {
                        dot(grow, &xrow[ix0..ix0 + grow.len()])
                    } else {
                        grow.iter()
                            .enumerate()
                            .map(|(t, g)| g * xrow[ix0 + t * sx])
                            .sum()
                    };
                    acc[tap] += f64::from(sum);
                });
            }
            for (d, a) in dw.iter_mut().zip(acc) {
                *d = a as f32;
            }
        });
        out
    }

    /// `dX[n, c, iy, ix] = sum over (i, j, oy, ox) mapping to (iy, ix) of G[n, c, oy, ox] *
    /// W[c, 0, i, j]`.
    pub fn input_gradient(&self, weight: &[f32], grad: &[f32]) -> Vec<f32> {
        let [h, w] = self.input;
        let [oh, ow] = self.output;
        let taps = self.kernel[0] * self.kernel[1];
        let sx = self.stride[1];
        let mut out = vec![0.0f32; self.batch * self.channels * h * w];
        out.par_chunks_mut(h * w)
            .enumerate()
            .for_each(|(plane, dx)| {
                let c = plane % self.channels;
                let gp = &grad[plane * oh * ow..(plane + 1) * oh * ow];
                let wc = &weight[c * taps..(c + 1) * taps];
                self.for_each_row(|tap, outputs, iy, ix0| {
                    let (grow, wv) = (&gp[outputs], wc[tap]);
                    let drow = &mut dx[iy * w..(iy + 1) * w];
                    if sx == 1 {
                        for (d, g) in drow[ix0..ix0 + grow.len()].iter_mut().zip(grow) {
                            *d += g * wv;
                        }
                    } else {
                        for (t, g) in grow.iter().enumerate() {
                            drow[ix0 + t * sx] += g * wv;
                        }
                    }
                });
            });
        out
    }
}

/// `sum a_i * b_i` with eight independent accumulators (vectorised).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
