//! 2-d convolutions of contiguous NCHW buffers as matrix products (the `gemm` crate) over an
//! im2col built a few images at a time, for the CPU backend: forward, input gradient and
//! weight gradient, any stride, padding, dilation and groups.
//!
//! For a group `g` of `cg = C_in / groups` input and `og = C_out / groups` output channels, and
//! a chunk of images, `cols` is `[K, L]` with `K = cg * kh * kw` and `L` the chunk's output
//! pixels: row `(c, i, j)` holds what kernel tap `(i, j)` of channel `c` reads for every output
//! pixel ([`Window::im2col_plane`]). With `W_g` `[og, K]` and `G_g` `[og, L]`:
//!
//! - forward `Y_g = W_g · cols`;
//! - input gradient `dX = col2im(W_g^T · G_g)` ([`Window::col2im_plane`], the adjoint);
//! - weight gradient `dW_g = sum over chunks of G_g · cols^T`.
//!
//! A 1x1 convolution with stride 1 and no padding reads each image in place (its channels are
//! already the rows of `cols`). burn's CPU kernels transpose the whole input to NHWC and the
//! weight on one thread, scatter each tile's result, and compute the input gradient as a
//! transposed convolution and the weight gradient as a convolution of the transposed input
//! (8-50 GFLOP/s); here every pass is parallel and each product reads its operands where they
//! lie. Chunks of several images keep products over small feature maps (7x7 = 49 pixels) from
//! being thin.
//!
//! Work is split over images: each rayon task takes a chunk and runs single-threaded products
//! when there are at least as many chunks as threads; otherwise (batch 1) the products
//! themselves use every thread. Weight gradients sum one partial per thread, in a fixed order,
//! so results do not depend on scheduling.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::ops::{AddAssign, Range};

use gemm::Parallelism;
use rayon::prelude::*;

use super::window::Window;

/// Fewest output pixels (columns) one product should have: smaller chunks of images are
/// joined until they reach it.
const MIN_COLUMNS: usize = 256;

/// The element types the kernels run in (`f32`, and `f64` for the exactness tests).
pub(crate) trait Real: Copy + Default + Send + Sync + AddAssign + 'static {
    /// One (the product's scale).
    const ONE: Self;
}

impl Real for f32 {
    const ONE: Self = 1.0;
}

impl Real for f64 {
    const ONE: Self = 1.0;
}

/// A matrix operand: its first element and the distances between rows and between columns.
#[derive(Clone, Copy)]
struct Operand<T> {
    ptr: *const T,
    row_stride: usize,
    col_stride: usize,
}

impl<T> Operand<T> {
    /// A row-major matrix whose rows start `ld` apart.
    fn rows(data: &[T], ld: usize) -> Self {
        Self {
            ptr: data.as_ptr(),
            row_stride: ld,
            col_stride: 1,
        }
    }

    /// The transpose of [`rows`](Self::rows)`(data, ld)`.
    fn transposed(data: &[T], ld: usize) -> Self {
        Self {
            ptr: data.as_ptr(),
            row_stride: 1,
            col_stride: ld,
        }
    }
}

/// `dst = lhs · rhs` (`[m, n] = [m, k] · [k, n]`), or `dst += lhs · rhs` when `accumulate`
/// (then `dst` must be initialised); `dst` row-major with rows `ld` apart. Only values are
/// written to `dst`: every element of the `[m, n]` block is initialised afterwards.
///
/// The caller guarantees that every operand element addressed by the strides lies in its
/// buffer (`dst` is a slice checked here; the operands are built from slices of their full
/// extent by the callers).
#[allow(clippy::too_many_arguments)]
fn product<T: Real>(
    [m, n, k]: [usize; 3],
    dst: &mut [MaybeUninit<T>],
    ld: usize,
    accumulate: bool,
    lhs: Operand<T>,
    rhs: Operand<T>,
    parallelism: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        dst.len() >= (m - 1) * ld + n,
        "product: destination too small"
    );
    // SAFETY: `dst` holds the `[m, n]` block at row stride `ld` (checked above); the callers
    // build `lhs` and `rhs` from slices that hold their `[m, k]` and `[k, n]` blocks at the
    // given strides; `dst` does not overlap them (distinct buffers).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().cast::<T>(),
            1,
            ld as isize,
            accumulate,
            lhs.ptr,
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.ptr,
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The shapes of one 2-d convolution: `x` `[N, C_in, H, W]`, weight `[C_out, C_in / groups,
/// kh, kw]`, output (and its gradient) `[N, C_out, OH, OW]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GemmConv {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub groups: usize,
    pub window: Window,
}

/// Images `start..start + len` of a batch.
#[derive(Clone, Copy, Debug)]
pub(super) struct Chunk {
    pub start: usize,
    pub len: usize,
}

impl GemmConv {
    /// Input channels per group.
    fn cg(&self) -> usize {
        self.in_channels / self.groups
    }

    /// Output channels per group.
    pub(super) fn og(&self) -> usize {
        self.out_channels / self.groups
    }

    /// Rows of `cols` per group: `cg * kh * kw`.
    pub(super) fn k(&self) -> usize {
        self.cg() * self.window.taps()
    }

    /// Group `g`'s filters in a weight (or weight gradient) `[C_out, K]`: rows `g * og` to
    /// `(g + 1) * og`.
    pub(super) fn group_weights(&self, g: usize) -> Range<usize> {
        let size = self.og() * self.k();
        g * size..(g + 1) * size
    }

    /// Output pixels per image.
    fn l(&self) -> usize {
        self.window.output_pixels()
    }

    /// Elements of one input image and one output image.
    fn image_sizes(&self) -> (usize, usize) {
        (
            self.in_channels * self.window.input_pixels(),
            self.out_channels * self.l(),
        )
    }

    /// Images per product: enough for [`MIN_COLUMNS`] output pixels, at most `limit`.
    ///
    /// 1x1 convolutions with stride 1 take one image at a time: they read and write every
    /// image in place, and joining images would need copies of the input and the gradient
    /// beside them.
    fn chunk_len(&self, limit: usize) -> usize {
        if self.window.is_pointwise() {
            return 1;
        }
        MIN_COLUMNS.div_ceil(self.l().max(1)).clamp(1, limit.max(1))
    }

    /// The batch in chunks such that each thread gets whole chunks.
    fn chunks(&self) -> Vec<Chunk> {
        let threads = rayon::current_num_threads().max(1);
        let len = self.chunk_len(self.batch.div_ceil(threads));
        (0..self.batch)
            .step_by(len)
            .map(|start| Chunk {
                start,
                len: len.min(self.batch - start),
            })
            .collect()
    }

    /// Whether a product runs on one thread (enough chunks to go round) or on all.
    fn parallelism(tasks: usize) -> Parallelism {
        if tasks >= rayon::current_num_threads() {
            Parallelism::None
        } else {
            Parallelism::Rayon(0)
        }
    }

    /// Whether the chunk's `cols` of group `g` is the input itself (no copy).
    fn reads_in_place(&self, chunk: Chunk) -> bool {
        self.window.is_pointwise() && chunk.len == 1
    }

    /// `cols` of group `g` for `chunk` (`[K, chunk.len * L]`), into `cols`.
    fn im2col<T: Real>(&self, x: &[T], chunk: Chunk, g: usize, cols: &mut [T]) {
        let (x_image, _) = self.image_sizes();
        let (taps, hw, l) = (self.window.taps(), self.window.input_pixels(), self.l());
        let ld = chunk.len * l;
        let cg = self.cg();
        cols[..self.k() * ld]
            .par_chunks_mut(taps * ld)
            .enumerate()
            .for_each(|(c, rows)| {
                for t in 0..chunk.len {
                    let at = (chunk.start + t) * x_image + (g * cg + c) * hw;
                    self.window.im2col_plane(&x[at..at + hw], rows, ld, t * l);
                }
            });
    }

    /// Where each row of group `g` of the chunk's images lies in a `[N, C_out, L]` buffer that
    /// starts at the chunk's first image, and in the same rows side by side (`[og, chunk.len *
    /// L]`): `(offset there, offset side by side)`, one pair per `L`-long row.
    fn output_rows(&self, chunk: Chunk, g: usize) -> impl Iterator<Item = (usize, usize)> {
        let (_, y_image) = self.image_sizes();
        let (l, og) = (self.l(), self.og());
        let ld = chunk.len * l;
        (0..og).flat_map(move |r| {
            (0..chunk.len).map(move |t| (t * y_image + (g * og + r) * l, r * ld + t * l))
        })
    }

    /// The chunk's `cols` of group `g` (`[K, chunk pixels]`) and its row stride: the input
    /// itself for a 1x1 convolution read in place, else built into `buffer`.
    pub(super) fn input_rows<'a, T: Real>(
        &self,
        x: &'a [T],
        chunk: Chunk,
        g: usize,
        buffer: &'a mut Vec<T>,
    ) -> (&'a [T], usize) {
        let (x_image, _) = self.image_sizes();
        let (k, l) = (self.k(), self.l());
        if self.reads_in_place(chunk) {
            let at = chunk.start * x_image + g * k * l;
            return (&x[at..at + k * l], l);
        }
        buffer.resize(k * chunk.len * l, T::default());
        self.im2col(x, chunk, g, buffer);
        (buffer, chunk.len * l)
    }

    /// Group `g`'s rows of the chunk's output gradient (`[og, chunk pixels]`) and their row
    /// stride: in place for one image, else gathered into `buffer`.
    pub(super) fn gradient_rows<'a, T: Real>(
        &self,
        grad: &'a [T],
        chunk: Chunk,
        g: usize,
        buffer: &'a mut Vec<T>,
    ) -> (&'a [T], usize) {
        let (_, y_image) = self.image_sizes();
        let (l, og) = (self.l(), self.og());
        if chunk.len == 1 {
            let at = chunk.start * y_image + g * og * l;
            return (&grad[at..at + og * l], l);
        }
        buffer.resize(og * chunk.len * l, T::default());
        let images = &grad[chunk.start * y_image..];
        for (at, side) in self.output_rows(chunk, g) {
            buffer[side..side + l].copy_from_slice(&images[at..at + l]);
        }
        (buffer, chunk.len * l)
    }

    /// `[N, C_out, OH, OW]`: the convolution of `x` with `weight` (no bias).
    pub fn forward<T: Real>(&self, x: &[T], weight: &[T]) -> Vec<T> {
        let (x_image, y_image) = self.image_sizes();
        assert_eq!(x.len(), self.batch * x_image, "forward: input size");
        assert_eq!(
            weight.len(),
            self.out_channels * self.k(),
            "forward: weight size"
        );
        let (k, l, og) = (self.k(), self.l(), self.og());
        let chunks = self.chunks();
        let parallelism = Self::parallelism(chunks.len());
        let mut y = uninit::<T>(self.batch * y_image);
        let parts = split_images(&mut y, &chunks, y_image);
        parts.into_par_iter().for_each(|(chunk, y)| {
            let ld = chunk.len * l;
            let mut cols = Vec::new();
            let mut joined = Vec::new();
            for g in 0..self.groups {
                let w = Operand::rows(&weight[self.group_weights(g)], k);
                let (cols_g, cols_ld) = self.input_rows(x, chunk, g, &mut cols);
                let rhs = Operand::rows(cols_g, cols_ld);
                if chunk.len == 1 {
                    let out = &mut y[g * og * l..(g + 1) * og * l];
                    product([og, l, k], out, l, false, w, rhs, parallelism);
                } else {
                    joined.resize(og * ld, T::default());
                    let dst = as_uninit(&mut joined);
                    product([og, ld, k], dst, ld, false, w, rhs, parallelism);
                    for (at, side) in self.output_rows(chunk, g) {
                        write_values(&mut y[at..at + l], &joined[side..side + l]);
                    }
                }
            }
        });
        // SAFETY: every chunk's products (or copies) wrote every output channel of each of
        // its images.
        unsafe { assume_init(y) }
    }

    /// `[N, C_in, H, W]`: the gradient of the convolution's input from the output gradient.
    pub fn input_gradient<T: Real>(&self, weight: &[T], grad: &[T]) -> Vec<T> {
        let (x_image, y_image) = self.image_sizes();
        assert_eq!(
            grad.len(),
            self.batch * y_image,
            "input gradient: gradient size"
        );
        assert_eq!(
            weight.len(),
            self.out_channels * self.k(),
            "input gradient: weight size"
        );
        let (k, l, og, cg) = (self.k(), self.l(), self.og(), self.cg());
        let (taps, hw) = (self.window.taps(), self.window.input_pixels());
        let chunks = self.chunks();
        let parallelism = Self::parallelism(chunks.len());
        let mut dx = uninit::<T>(self.batch * x_image);
        let parts = split_images(&mut dx, &chunks, x_image);
        parts.into_par_iter().for_each(|(chunk, dx)| {
            let ld = chunk.len * l;
            let mut joined = Vec::new();
            let mut cols = Vec::new();
            for g in 0..self.groups {
                // W_g^T: `[K, og]`.
                let wt = Operand::transposed(&weight[self.group_weights(g)], k);
                let (grad_g, grad_ld) = self.gradient_rows(grad, chunk, g, &mut joined);
                let grad_g = Operand::rows(grad_g, grad_ld);
                if self.reads_in_place(chunk) {
                    let out = &mut dx[g * cg * hw..(g + 1) * cg * hw];
                    product([k, l, og], out, l, false, wt, grad_g, parallelism);
                    continue;
                }
                cols.resize(k * ld, T::default());
                product(
                    [k, ld, og],
                    as_uninit(&mut cols),
                    ld,
                    false,
                    wt,
                    grad_g,
                    parallelism,
                );
                // Group `g`'s planes of each of the chunk's images, one task each.
                let rows_per_channel = taps * ld;
                dx.par_chunks_mut(x_image)
                    .enumerate()
                    .for_each(|(t, image)| {
                        image[g * cg * hw..(g + 1) * cg * hw]
                            .par_chunks_mut(hw)
                            .enumerate()
                            .for_each(|(c, plane)| {
                                let rows = &cols[c * rows_per_channel..(c + 1) * rows_per_channel];
                                let plane = filled(plane, T::default());
                                self.window.col2im_plane(rows, ld, t * l, plane);
                            });
                    });
            }
        });
        // SAFETY: 1x1 convolutions read in place wrote each group's channels of the image
        // with a product; the others filled every plane of each group before adding to it.
        unsafe { assume_init(dx) }
    }

    /// Panics unless `x` and `grad` hold the batch's input and output gradient.
    pub(super) fn check_weight_gradient_operands<T>(&self, x: &[T], grad: &[T]) {
        let (x_image, y_image) = self.image_sizes();
        assert_eq!(x.len(), self.batch * x_image, "weight gradient: input size");
        assert_eq!(
            grad.len(),
            self.batch * y_image,
            "weight gradient: gradient size"
        );
    }

    /// `[C_out, C_in / groups, kh, kw]`: the gradient of the weight from the input and the
    /// output gradient.
    pub fn weight_gradient<T: Real>(&self, x: &[T], grad: &[T]) -> Vec<T> {
        self.check_weight_gradient_operands(x, grad);
        let (k, l, og) = (self.k(), self.l(), self.og());
        let size = self.out_channels * k;
        // Large maps: one contiguous range of images per thread, each summed into its own
        // partial. Small maps (late layers, large weights): one sum over chunks of the batch,
        // the products themselves on every thread, so that no weight-sized partial is held
        // beside the sum (these gradients are computed first in backward, while every
        // activation is still kept: the step's peak).
        let parts = if self.l() >= MIN_COLUMNS {
            rayon::current_num_threads().clamp(1, self.batch)
        } else {
            1
        };
        let parallelism = Self::parallelism(parts);
        let per_part = self.batch.div_ceil(parts);
        let ranges: Vec<(usize, usize)> = (0..self.batch)
            .step_by(per_part)
            .map(|s| (s, (s + per_part).min(self.batch)))
            .collect();
        let partials: Vec<Vec<T>> = ranges
            .into_par_iter()
            .map(|(start, end)| {
                if l == 0 {
                    return vec![T::default(); size];
                }
                // The first chunk's products write every element (no zeroing pass over the
                // weights), the others add to them.
                let mut dw = uninit::<T>(size);
                let len = self.chunk_len(end - start);
                let (mut cols, mut joined) = (Vec::new(), Vec::new());
                for s in (start..end).step_by(len) {
                    let chunk = Chunk {
                        start: s,
                        len: len.min(end - s),
                    };
                    let ld = chunk.len * l;
                    for g in 0..self.groups {
                        let (grad_g, grad_ld) = self.gradient_rows(grad, chunk, g, &mut joined);
                        let grad_g = Operand::rows(grad_g, grad_ld);
                        // cols^T: `[chunk pixels, K]`.
                        let (cols_g, cols_ld) = self.input_rows(x, chunk, g, &mut cols);
                        let cols_t = Operand::transposed(cols_g, cols_ld);
                        let out = &mut dw[self.group_weights(g)];
                        let accumulate = s != start;
                        product([og, k, ld], out, k, accumulate, grad_g, cols_t, parallelism);
                    }
                }
                // SAFETY: the first chunk's products (`ld > 0`: `l > 0` and a non-empty chunk)
                // wrote every `[og, k]` block of every group, which tile `dw`.
                unsafe { assume_init(dw) }
            })
            .collect();
        let mut partials = partials.into_iter();
        let mut total = partials.next().unwrap_or_else(|| vec![T::default(); size]);
        for part in partials {
            total
                .par_chunks_mut(1 << 14)
                .zip(part.par_chunks(1 << 14))
                .for_each(|(t, p)| {
                    for (t, &p) in t.iter_mut().zip(p) {
                        *t += p;
                    }
                });
        }
        total
    }
}

/// `buffer` (`[N, image]`) cut into one mutable piece per chunk of images.
fn split_images<'a, T>(
    mut buffer: &'a mut [T],
    chunks: &[Chunk],
    image: usize,
) -> Vec<(Chunk, &'a mut [T])> {
    let mut parts = Vec::with_capacity(chunks.len());
    for &chunk in chunks {
        let (head, tail) = buffer.split_at_mut(chunk.len * image);
        parts.push((chunk, head));
        buffer = tail;
    }
    parts
}

/// `len` elements for the caller to write before anything reads them (no zeroing pass: the
/// products overwrite their whole destination).
pub(super) fn uninit<T>(len: usize) -> Vec<MaybeUninit<T>> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit` needs no initialisation; the capacity is `len`.
    unsafe { v.set_len(len) };
    v
}

/// `v` as values.
///
/// # Safety
/// Every element of `v` has been written.
pub(super) unsafe fn assume_init<T>(v: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut v = ManuallyDrop::new(v);
    // SAFETY: `MaybeUninit<T>` has `T`'s layout; the caller guarantees every element is
    // initialised; pointer, length and capacity come from a live vector that is not dropped.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<T>(), v.len(), v.capacity()) }
}

/// Initialised values seen as possibly uninitialised, for [`product`] to write or accumulate
/// into (it writes only values, so they stay initialised).
fn as_uninit<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: same layout; the only writer through the result is `product`, which writes
    // values of `T`, and `write_values`, which does too.
    unsafe { &mut *(s as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// `src` copied into `dst`.
fn write_values<T: Copy>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        d.write(v);
    }
}

/// `plane` set to `value` everywhere, as values.
fn filled<T: Copy>(plane: &mut [MaybeUninit<T>], value: T) -> &mut [T] {
    for v in plane.iter_mut() {
        v.write(value);
    }
    // SAFETY: every element was just written.
    unsafe { &mut *(plane as *mut [MaybeUninit<T>] as *mut [T]) }
}
