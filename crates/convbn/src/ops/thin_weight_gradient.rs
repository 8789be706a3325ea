//! The weight gradient of a 2-d convolution over few output pixels (late layers at batch 1),
//! with each output channel's dot with its weights taken from registers.
//!
//! With `P = N * OH * OW` output pixels, group `g`'s gradient `dW_g = G_g · cols^T` (see
//! [`GemmConv`]) is a product whose inner dimension is `P`. Tune's backward then needs, per
//! output channel, `sum_k dW[c, k] W[c, k]` (`d_s` on the output side, see `ops::autodiff`):
//! after the product, a pass that reads `dW` and `W` back, which at batch 1 took longer than
//! the product itself (measured below). Here `cols^T` (`[P, K]`) is packed once, in column
//! blocks of [`BLOCK`] (`[ceil(K / BLOCK), P, BLOCK]`, tens of KiB, in cache), and [`ROWS`]
//! rows at a time are built a block at a time in AVX-512 registers, each block stored and
//! multiplied into the row's dot lanes before the next:
//!
//! ```text
//! dW[c, k] = sum_p G[c, p] cols[k, p]      (fused multiply-adds, in order of p)
//! dot[c]   = sum_k dW[c, k] W[c, k]        (16 f32 lanes per row, summed in f64)
//! ```
//!
//! Measured on the Ice Lake Xeon (2 threads, `W` 400x400, 16 pixels: RegNetX-400MF's last
//! stage at 112x112): the product with `gemm` 30 us, 85-90 us with a one-thread dot after
//! it; here both in 38 us.
//! Without AVX-512F the product and a separate dot run instead. Rows are shared out over the
//! threads; each row's sums run in a fixed order, so results do not depend on scheduling.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gemm_conv::{Chunk, GemmConv, assume_init, uninit};

/// Most output pixels (over the batch) for which [`GemmConv::thin_weight_gradient`] runs.
pub(crate) const THIN_MAX_PIXELS: usize = 64;

/// Weight columns per block: four AVX-512 registers of f32.
const BLOCK: usize = 64;

/// Multiply-adds per rayon task.
const TASK_WORK: usize = 1 << 16;

impl GemmConv {
    /// Whether the output has at most [`THIN_MAX_PIXELS`] pixels over the batch.
    pub fn is_thin(&self) -> bool {
        self.batch * self.window.output_pixels() <= THIN_MAX_PIXELS
    }

    /// `[C_out, C_in / groups, kh, kw]`: the gradient of the weight from the input and the
    /// output gradient (as [`weight_gradient`](Self::weight_gradient)), and the dot of each
    /// output channel's gradient with its weights in `weight` (`[C_out]`, in f64); `None`
    /// where the CPU has no AVX-512F.
    pub fn thin_weight_gradient(
        &self,
        x: &[f32],
        grad: &[f32],
        weight: &[f32],
    ) -> Option<(Vec<f32>, Vec<f64>)> {
        if !supported() {
            return None;
        }
        self.check_weight_gradient_operands(x, grad);
        let (k, og) = (self.k(), self.og());
        let size = self.out_channels * k;
        assert_eq!(weight.len(), size, "weight gradient: weight size");
        let pixels = self.batch * self.window.output_pixels();
        let all = Chunk {
            start: 0,
            len: self.batch,
        };
        let mut dw = uninit::<f32>(size);
        let mut dots = vec![0.0f64; self.out_channels];
        let (mut cols, mut joined, mut packed) = (Vec::new(), Vec::new(), Vec::new());
        // Sets of `ROWS` rows per rayon task.
        let sets = (TASK_WORK / (ROWS * k * pixels).max(1)).max(1);
        for g in 0..self.groups {
            let (cols_g, ld) = self.input_rows(x, all, g, &mut cols);
            let packed = pack_blocks(cols_g, ld, [k, pixels], &mut packed);
            let (grad_g, grad_ld) = self.gradient_rows(grad, all, g, &mut joined);
            let range = self.group_weights(g);
            let weight_g = &weight[range.clone()];
            dw[range]
                .par_chunks_mut(ROWS * k)
                .zip(dots[g * og..(g + 1) * og].par_chunks_mut(ROWS))
                .enumerate()
                .with_min_len(sets)
                .for_each(|(r, (out, dots))| {
                    let first = ROWS * r;
                    let rows = Rows {
                        grad: &grad_g[first * grad_ld..],
                        grad_ld,
                        pixels,
                        weight: &weight_g[first * k..],
                        k,
                    };
                    gradient_rows(rows, packed, out, dots);
                });
        }
        // SAFETY: every row of every group was written whole by `gradient_rows`.
        let dw = unsafe { assume_init(dw) };
        Some((dw, dots))
    }
}

/// `cols` (`[K, P]`, rows `ld` apart) transposed into `[ceil(K / BLOCK), P, BLOCK]` in
/// `buffer`, starting on a cache line (64 bytes), the last block's columns past `K` zero.
fn pack_blocks<'a>(
    cols: &[f32],
    ld: usize,
    [k, pixels]: [usize; 2],
    buffer: &'a mut Vec<f32>,
) -> &'a [f32] {
    let len = k.div_ceil(BLOCK) * pixels * BLOCK;
    buffer.clear();
    buffer.resize(len + 16, 0.0);
    let start = buffer.as_ptr().align_offset(64).min(16);
    let packed = &mut buffer[start..start + len];
    packed
        .par_chunks_mut(pixels * BLOCK)
        .enumerate()
        .for_each(|(b, block)| {
            let rows = &cols[b * BLOCK * ld..];
            let width = BLOCK.min(k - b * BLOCK);
            for (p, out) in block.chunks_exact_mut(BLOCK).enumerate() {
                for (j, o) in out[..width].iter_mut().enumerate() {
                    *o = rows[j * ld + p];
                }
            }
        });
    packed
}

/// Up to [`ROWS`] rows of a group's weight gradient to build: their output gradients (rows
/// `grad_ld` apart, `pixels` long) and weights (rows `k` long).
#[derive(Clone, Copy)]
struct Rows<'a> {
    grad: &'a [f32],
    grad_ld: usize,
    pixels: usize,
    weight: &'a [f32],
    k: usize,
}

/// Rows built together, sharing each load of `cols`: 16 AVX-512 accumulators.
const ROWS: usize = 4;

/// Whether this CPU runs the kernel (AVX-512F).
fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out` (`dots.len()` rows of `k`, at most [`ROWS`]) and `dots`: for each row `c`, `out[c,
/// k] = sum_p grad[c, p] cols[k, p]` from the packed blocks of `cols`, and `dots[c] = sum_k
/// out[c, k] weight[c, k]`. Only where [`supported`].
fn gradient_rows(rows: Rows, packed: &[f32], out: &mut [MaybeUninit<f32>], dots: &mut [f64]) {
    let (r, k, pixels) = (dots.len(), rows.k, rows.pixels);
    assert!(
        r <= ROWS && supported(),
        "thin weight gradient: rows or CPU"
    );
    assert!(
        r == 0
            || ((r - 1) * rows.grad_ld + pixels <= rows.grad.len()
                && r * k <= rows.weight.len()
                && r * k <= out.len()
                && k.div_ceil(BLOCK) * pixels * BLOCK <= packed.len()),
        "thin weight gradient: operand sizes"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX-512F (asserted) and the operands hold what the kernel reads and
    // writes (asserted above).
    unsafe {
        match r {
            4 => avx512::rows::<4>(rows, packed, out, dots),
            3 => avx512::rows::<3>(rows, packed, out, dots),
            2 => avx512::rows::<2>(rows, packed, out, dots),
            1 => avx512::rows::<1>(rows, packed, out, dots),
            _ => {}
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{BLOCK, Rows};

    /// f32 lanes per register.
    const V: usize = 16;
    /// Registers per block of a row.
    const Q: usize = BLOCK / V;

    /// [`gradient_rows`](super::gradient_rows) for `R` rows: each block's `R x Q` sums in
    /// registers over the pixels (one load of `cols` per `R` multiply-adds), stored (masked
    /// past `k`) and multiplied into one register of dot lanes per row.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `grad` holds `R` rows `grad_ld` apart of `pixels`, `weight` and
    /// `out` hold `R` rows of `k`, `packed` holds `ceil(k / BLOCK)` blocks of `pixels x
    /// BLOCK`, and `dots` holds `R` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows<const R: usize>(
        rows: Rows,
        packed: &[f32],
        out: &mut [MaybeUninit<f32>],
        dots: &mut [f64],
    ) {
        let Rows {
            grad,
            grad_ld,
            pixels,
            weight,
            k,
        } = rows;
        let (grad, packed, weight) = (grad.as_ptr(), packed.as_ptr(), weight.as_ptr());
        let out = out.as_mut_ptr().cast::<f32>();
        let mut lanes = [_mm512_setzero_ps(); R];
        for b in 0..k.div_ceil(BLOCK) {
            // SAFETY (all pointer arithmetic below): within the operands' sizes, which the
            // caller guarantees; masked loads and stores touch only elements below `k`.
            unsafe {
                let block = packed.add(b * pixels * BLOCK);
                let mut acc = [[_mm512_setzero_ps(); Q]; R];
                for p in 0..pixels {
                    let c = block.add(p * BLOCK);
                    let cols: [__m512; Q] = std::array::from_fn(|q| _mm512_loadu_ps(c.add(q * V)));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let g = _mm512_set1_ps(*grad.add(r * grad_ld + p));
                        for (a, &c) in acc.iter_mut().zip(&cols) {
                            *a = _mm512_fmadd_ps(g, c, *a);
                        }
                    }
                }
                for (r, (acc, lanes)) in acc.iter().zip(&mut lanes).enumerate() {
                    for (q, &a) in acc.iter().enumerate() {
                        let start = b * BLOCK + q * V;
                        if start >= k {
                            break;
                        }
                        let n = (k - start).min(V);
                        let mask: __mmask16 = if n == V { u16::MAX } else { (1u16 << n) - 1 };
                        let at = r * k + start;
                        _mm512_mask_storeu_ps(out.add(at), mask, a);
                        let w = _mm512_maskz_loadu_ps(mask, weight.add(at));
                        *lanes = _mm512_fmadd_ps(a, w, *lanes);
                    }
                }
            }
        }
        for (dot, lanes) in dots.iter_mut().zip(lanes) {
            let low = _mm512_cvtps_pd(_mm512_castps512_ps256(lanes));
            let high = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                _mm512_castps_pd(lanes),
            )));
            *dot = _mm512_reduce_add_pd(_mm512_add_pd(low, high));
        }
    }
}
