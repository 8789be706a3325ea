//! The sliding window of a 2-d convolution: which input pixel each (kernel tap, output pixel)
//! reads. Shared by the direct depthwise kernels and the im2col of the GEMM convolutions.

use std::ops::Range;

use crate::geometry::ConvGeometry;

/// Input and output extents, kernel, stride, padding and dilation of a 2-d convolution.
///
/// Output pixel `(oy, ox)` and kernel tap `(i, j)` read input pixel
/// `(oy * sy + i * dy - py, ox * sx + j * dx - px)`, zero when outside the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub input: [usize; 2],
    pub output: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Padding at the start of each axis (the end padding only decides `output`).
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl Window {
    /// The window of a 2-d `geometry` over `input` with `kernel`, when the output is
    /// `output` (what the convolution computed or was given a gradient for).
    pub fn new(
        geometry: &ConvGeometry,
        input: [usize; 2],
        kernel: [usize; 2],
        output: [usize; 2],
    ) -> Option<Self> {
        if geometry.spatial() != 2 {
            return None;
        }
        let expected = geometry.output_size(&input, &kernel)?;
        (expected == output).then(|| Self {
            input,
            output,
            kernel,
            stride: [geometry.stride[0], geometry.stride[1]],
            padding: [geometry.padding[0].0, geometry.padding[1].0],
            dilation: [geometry.dilation[0], geometry.dilation[1]],
        })
    }

    /// Kernel taps `kh * kw`.
    pub fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// Output pixels `oh * ow`.
    pub fn output_pixels(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Input pixels `h * w`.
    pub fn input_pixels(&self) -> usize {
        self.input[0] * self.input[1]
    }

    /// Whether every output pixel reads exactly its own input pixel (1x1 kernel, stride 1, no
    /// padding): the input plane is its own im2col.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.input == self.output
    }

    /// The output positions `o` along `axis` whose input position `o * stride + k * dilation -
    /// padding` for kernel offset `k` lies inside the input, and that position for the first.
    pub fn span(&self, axis: usize, k: usize) -> Option<(usize, usize, usize)> {
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
    pub fn for_each_row(&self, mut visit: impl FnMut(usize, Range<usize>, usize, usize)) {
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

    /// The im2col rows of one input plane (`[h, w]`): row `tap` of `rows` (each `ld` long,
    /// the plane's `oh * ow` values from offset `at`) holds what tap `tap` reads for every
    /// output pixel, zero where that is padding.
    pub fn im2col_plane<T: Copy + Default>(
        &self,
        plane: &[T],
        rows: &mut [T],
        ld: usize,
        at: usize,
    ) {
        let [_, w] = self.input;
        let [oh, ow] = self.output;
        let (sy, sx) = (self.stride[0], self.stride[1]);
        let zero = T::default();
        for i in 0..self.kernel[0] {
            for j in 0..self.kernel[1] {
                let tap = i * self.kernel[1] + j;
                let row = &mut rows[tap * ld + at..tap * ld + at + oh * ow];
                let (Some((y0, y1, iy0)), Some((x0, x1, ix0))) = (self.span(0, i), self.span(1, j))
                else {
                    row.fill(zero);
                    continue;
                };
                row[..y0 * ow].fill(zero);
                row[y1 * ow..].fill(zero);
                for (r, oy) in (y0..y1).enumerate() {
                    let iy = iy0 + r * sy;
                    let out = &mut row[oy * ow..(oy + 1) * ow];
                    out[..x0].fill(zero);
                    out[x1..].fill(zero);
                    let src = &plane[iy * w..(iy + 1) * w];
                    let out = &mut out[x0..x1];
                    if sx == 1 {
                        out.copy_from_slice(&src[ix0..ix0 + out.len()]);
                    } else {
                        for (t, o) in out.iter_mut().enumerate() {
                            *o = src[ix0 + t * sx];
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`im2col_plane`](Self::im2col_plane): adds every value of the rows to
    /// the input pixel it was read from (padding positions are dropped).
    pub fn col2im_plane<T: Copy + std::ops::AddAssign>(
        &self,
        rows: &[T],
        ld: usize,
        at: usize,
        plane: &mut [T],
    ) {
        let w = self.input[1];
        let sx = self.stride[1];
        self.for_each_row(|tap, outputs, iy, ix0| {
            let src = &rows[tap * ld + at + outputs.start..tap * ld + at + outputs.end];
            let dst = &mut plane[iy * w..(iy + 1) * w];
            if sx == 1 {
                for (d, &v) in dst[ix0..ix0 + src.len()].iter_mut().zip(src) {
                    *d += v;
                }
            } else {
                for (t, &v) in src.iter().enumerate() {
                    dst[ix0 + t * sx] += v;
                }
            }
        });
    }
}
