//! Direct depthwise convolutions (2-d, one filter per channel) on contiguous f32 buffers, for
//! the CPU backend: forward, input gradient and weight gradient.
//!
//! burn computes a depthwise weight gradient as a grouped convolution of the transposed input
//! and its input gradient as a grouped transposed convolution, both far slower than the
//! little arithmetic they need (9 multiply-adds per output element for 3x3): in MobileNetV2
//! (batch 8, 224x224) they took about a third of a Tune training step. Here each channel's
//! plane is walked directly, one rayon task per channel (weight gradient) or per plane (input
//! gradient), rows vectorised when the stride is 1.

use rayon::prelude::*;

use super::lanes::dot;
use super::window::Window;

/// The shapes of one depthwise convolution: `x` `[N, C, H, W]`, `grad` `[N, C, OH, OW]`,
/// weight `[C, 1, KH, KW]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Depthwise {
    pub batch: usize,
    pub channels: usize,
    pub window: Window,
}

impl Depthwise {
    /// `Y[n, c, oy, ox] = sum_{i, j} W[c, 0, i, j] * X[n, c, oy*sy + i*dy - py, ox*sx + j*dx -
    /// px]` (no bias).
    pub fn forward(&self, x: &[f32], weight: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; self.batch * self.channels * self.window.output_pixels()];
        out.par_chunks_mut(self.window.output_pixels())
            .enumerate()
            .for_each(|(plane, y)| self.forward_plane(plane, x, weight, y));
        out
    }

    /// The output of one plane (`plane = n * C + c`): each kernel tap adds its weight times
    /// the input rows it reads (rows vectorised at stride 1).
    #[inline(never)]
    fn forward_plane(&self, plane: usize, x: &[f32], weight: &[f32], y: &mut [f32]) {
        let [h, w] = self.window.input;
        let taps = self.window.taps();
        let sx = self.window.stride[1];
        let c = plane % self.channels;
        let xp = &x[plane * h * w..(plane + 1) * h * w];
        let wc = &weight[c * taps..(c + 1) * taps];
        self.window.for_each_row(|tap, outputs, iy, ix0| {
            let (yrow, wv) = (&mut y[outputs], wc[tap]);
            let xrow = &xp[iy * w..(iy + 1) * w];
            if sx == 1 {
                for (o, &v) in yrow.iter_mut().zip(&xrow[ix0..]) {
                    *o += wv * v;
                }
            } else {
                for (t, o) in yrow.iter_mut().enumerate() {
                    *o += wv * xrow[ix0 + t * sx];
                }
            }
        });
    }

    /// `dW[c, 0, i, j] = sum_{n, oy, ox} G[n, c, oy, ox] * X[n, c, oy*sy + i*dy - py, ...]`.
    pub fn weight_gradient(&self, x: &[f32], grad: &[f32]) -> Vec<f32> {
        let taps = self.window.taps();
        let mut out = vec![0.0f32; self.channels * taps];
        out.par_chunks_mut(taps)
            .enumerate()
            .for_each(|(c, dw)| self.weight_gradient_channel(c, x, grad, dw));
        out
    }

    /// `dX[n, c, iy, ix] = sum over (i, j, oy, ox) mapping to (iy, ix) of G[n, c, oy, ox] *
    /// W[c, 0, i, j]`.
    pub fn input_gradient(&self, weight: &[f32], grad: &[f32]) -> Vec<f32> {
        let hw = self.window.input_pixels();
        let mut out = vec![0.0f32; self.batch * self.channels * hw];
        out.par_chunks_mut(hw)
            .enumerate()
            .for_each(|(plane, dx)| self.input_gradient_plane(plane, weight, grad, dx));
        out
    }

    /// Channel `c`'s weight gradient (`taps` values) over the whole batch.
    #[inline(never)]
    fn weight_gradient_channel(&self, c: usize, x: &[f32], grad: &[f32], dw: &mut [f32]) {
        let [h, w] = self.window.input;
        let [oh, ow] = self.window.output;
        let taps = self.window.taps();
        let sx = self.window.stride[1];
        let mut acc = vec![0.0f64; taps];
        for n in 0..self.batch {
            let plane = n * self.channels + c;
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            let gp = &grad[plane * oh * ow..(plane + 1) * oh * ow];
            self.window.for_each_row(|tap, outputs, iy, ix0| {
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
    }

    /// The input gradient of one plane (`plane = n * C + c`).
    #[inline(never)]
    fn input_gradient_plane(&self, plane: usize, weight: &[f32], grad: &[f32], dx: &mut [f32]) {
        let w = self.window.input[1];
        let [oh, ow] = self.window.output;
        let taps = self.window.taps();
        let sx = self.window.stride[1];
        let c = plane % self.channels;
        let gp = &grad[plane * oh * ow..(plane + 1) * oh * ow];
        let wc = &weight[c * taps..(c + 1) * taps];
        self.window.for_each_row(|tap, outputs, iy, ix0| {
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
    }
}
