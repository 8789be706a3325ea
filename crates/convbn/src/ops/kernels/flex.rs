//! One multi-threaded pass per kernel on Flex's f32 tensors (other dtypes: composed).

use std::borrow::Borrow;

use burn::backend::Flex;
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::tensor::{DType, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::{
    ActivationGradient, BnGradients, DScale, FusedKernels, Sums, activation_gradient_composed,
    affine_activation_composed, flex_conv, fold_activation_composed, fold_gradients_composed,
    scale_gradient_composed, scale_weight_backward_composed, weight_and_scale_gradient_composed,
};
use crate::activation::Activation;
use crate::fold::{BnParams, scale_weight_composed};
use crate::geometry::ConvGeometry;
use crate::ops::Kept;
use crate::ops::lanes::dot_f64;
use crate::ops::widest::widest;
use burn::tensor::Shape;

/// Elements per rayon task of the element-wise kernels.
const CHUNK: usize = 1 << 14;

/// Where the activation passes gradients, as the open interval of its output.
fn open_bounds(activation: Activation) -> (f32, f32) {
    match activation {
        Activation::Identity => (f32::NEG_INFINITY, f32::INFINITY),
        Activation::Relu => (0.0, f32::INFINITY),
        Activation::Relu6 => (0.0, 6.0),
    }
}

/// `A(z)` of one value.
#[inline(always)]
fn activate(activation: Activation, z: f32) -> f32 {
    match activation {
        Activation::Identity => z,
        Activation::Relu => z.max(0.0),
        Activation::Relu6 => z.clamp(0.0, 6.0),
    }
}

/// `[N, C, rest...]` as `(N * C, rest)`: planes of one channel of one sample.
fn planes(t: &FlexTensor) -> Option<(usize, usize)> {
    let shape = t.layout().shape();
    if shape.num_dims() < 2 {
        return None;
    }
    let (n, c) = (shape[0], shape[1]);
    let count = n * c;
    (count > 0).then(|| (c, shape.num_elements() / count))
}

/// A `[C]` vector as f32 values, when it is one.
fn channel_vector(t: Option<FlexTensor>, c: usize) -> Option<Option<FlexTensor>> {
    match t {
        None => Some(None),
        Some(t) => contiguous_f32(t)
            .filter(|t| t.as_slice::<f32>().is_some_and(|v| v.len() == c))
            .map(Some),
    }
}

/// `t` contiguous and writable by us (copied only when shared or strided).
fn writable(t: FlexTensor) -> FlexTensor {
    if t.is_unique() && t.layout().contiguous_offsets().is_some() {
        t
    } else {
        let mut t = t.to_contiguous();
        // Make the storage our own now (copy-on-write), outside the parallel loop.
        let _ = t.storage_mut::<f32>();
        t
    }
}

/// `t` as a contiguous f32 tensor (no copy when it already is); `None` for other dtypes.
fn contiguous_f32(t: FlexTensor) -> Option<FlexTensor> {
    (t.dtype() == DType::F32).then(|| flex_conv::contiguous(t))
}

/// `(weights per output channel, channels)` when `w` splits evenly into `s.len()` rows.
fn rows(w: &[f32], s: &[f32]) -> Option<usize> {
    (!s.is_empty() && !w.is_empty() && w.len().is_multiple_of(s.len())).then(|| w.len() / s.len())
}

/// A `[C]` f32 vector's values, without a copy; `None` when it is not one or is strided.
fn vector(t: &FlexTensor, c: usize) -> Option<&[f32]> {
    t.as_slice::<f32>().filter(|v| v.len() == c)
}

/// A block's fold as four `[C]` columns in one buffer: `s`, `b'`, `1 / sqrt(var + eps)` and
/// `b - mean`, from its BN vectors by the composed fold's operations in its order (same f32
/// values), one vectorised loop each. Built once in forward (Tune's pass over the output) and
/// once in backward ([`FlexFold`]): one heap block each, where the fold's four vectors as
/// tensors cost each block several heap blocks and tensor wrappers, twice per step.
struct FoldTable {
    /// The four columns, one after the other.
    values: Vec<f32>,
}

impl FoldTable {
    /// The fold of `bn`'s `[c]` vectors; `None` when one is not a contiguous f32 `[c]`
    /// vector (callers then take the composed path).
    fn new(bn: &BnParams<Flex>, c: usize) -> Option<Self> {
        fn optional(t: &Option<FlexTensor>, c: usize) -> Option<Option<&[f32]>> {
            match t {
                None => Some(None),
                Some(t) => vector(t, c).map(Some),
            }
        }
        let (gamma, beta, bias) = (
            optional(&bn.gamma, c)?,
            optional(&bn.beta, c)?,
            optional(&bn.bias, c)?,
        );
        let (mean, var, eps) = (vector(&bn.mean, c)?, vector(&bn.var, c)?, bn.eps as f32);
        let mut values = vec![0.0f32; 4 * c];
        let table = &mut values[..];
        widest!({
            let (scale, rest) = table.split_at_mut(c);
            let (folded, rest) = rest.split_at_mut(c);
            let (inv_std, centered) = rest.split_at_mut(c);
            for (i, v) in inv_std.iter_mut().zip(var) {
                *i = 1.0 / (v + eps).sqrt();
            }
            match gamma {
                Some(g) => {
                    for ((s, g), i) in scale.iter_mut().zip(g).zip(&*inv_std) {
                        *s = g * i;
                    }
                }
                None => scale.copy_from_slice(inv_std),
            }
            match bias {
                Some(b) => {
                    for ((x, b), m) in centered.iter_mut().zip(b).zip(mean) {
                        *x = b - m;
                    }
                }
                None => {
                    for (x, m) in centered.iter_mut().zip(mean) {
                        *x = -m;
                    }
                }
            }
            for ((f, x), s) in folded.iter_mut().zip(&*centered).zip(&*scale) {
                *f = x * s;
            }
            if let Some(beta) = beta {
                for (f, b) in folded.iter_mut().zip(beta) {
                    *f += b;
                }
            }
        });
        Some(Self { values })
    }

    /// Column `k` (0: `s`, 1: `b'`, 2: `1 / sqrt(var + eps)`, 3: `b - mean`).
    fn column(&self, k: usize) -> &[f32] {
        let c = self.channels();
        &self.values[k * c..(k + 1) * c]
    }

    /// `s = gamma / sqrt(var + eps)`.
    fn scale(&self) -> &[f32] {
        self.column(0)
    }

    /// `b' = (b - mean) * s + beta`.
    fn bias(&self) -> &[f32] {
        self.column(1)
    }

    /// `1 / sqrt(var + eps)`.
    fn inv_std(&self) -> &[f32] {
        self.column(2)
    }

    /// `b - mean`.
    fn centered_bias(&self) -> &[f32] {
        self.column(3)
    }

    /// Channels.
    fn channels(&self) -> usize {
        self.values.len() / 4
    }

    /// Whether every `s` may be divided out of a weight gradient: none is zero, tiny or
    /// non-finite (every channel checked without an early exit, so that the loop vectorises).
    fn invertible(&self) -> bool {
        self.scale().iter().fold(true, |ok, s| {
            let s = s.abs();
            ok & (1e-8..=1e8).contains(&s)
        })
    }
}

/// Flex's prepared fold for the output-side backward ([`FusedKernels::output_fold`]): the
/// block's BN parameters (for the composed fallbacks) and their [`FoldTable`], built once per
/// backward for its three or four kernels.
pub(crate) struct FlexFold {
    bn: BnParams<Flex>,
    table: FoldTable,
}

impl Borrow<BnParams<Flex>> for FlexFold {
    fn borrow(&self) -> &BnParams<Flex> {
        &self.bn
    }
}

/// `A(y * a + b)` over every plane of `y` (`[N, C, ...]` in planes of `plane` values), with
/// `(a, b) = coefficients(channel)` computed once per plane; in place when `y` is ours.
fn affine_planes(
    y: FlexTensor,
    plane: usize,
    activation: Activation,
    coefficients: impl Fn(usize) -> (f32, f32) + Sync,
) -> FlexTensor {
    let c = y.layout().shape()[1];
    let mut y = writable(y);
    let (start, end) = y.layout().contiguous_offsets().expect("contiguous");
    let data = &mut y.storage_mut::<f32>()[start..end];
    data.par_chunks_mut(plane)
        .enumerate()
        .with_min_len((CHUNK / plane).max(1))
        .for_each(|(i, p)| {
            let (a, b) = coefficients(i % c);
            affine_plane(p, a, b, activation);
        });
    y
}

/// `A(v * a + b)` for every value of one channel's plane (a named function, so that profiles
/// show it).
#[inline(never)]
fn affine_plane(p: &mut [f32], a: f32, b: f32, activation: Activation) {
    for v in p.iter_mut() {
        *v = activate(activation, *v * a + b);
    }
}

/// What the activation kept for one plane: its output (with the open interval where it passes
/// gradients), its mask, or nothing (identity).
#[derive(Clone, Copy)]
enum KeptPlane<'a> {
    Output(&'a [f32], f32, f32),
    Mask(&'a [u8]),
    Nothing,
}

/// Lanes of the vectorised partial sums.
const LANES: usize = 16;

/// `G = dL/dZ` (`dL/dA` where the activation passes it) of one plane in place, scaled by
/// `scale`, with `sum G` and (when the output `A` was kept) `sum G * A`, both unscaled:
/// partial sums in 16 f32 lanes per 256 values (vectorised), accumulated in f64.
#[inline(never)]
fn gradient_plane(p: &mut [f32], kept: KeptPlane, scale: f32) -> (f64, f64) {
    let (mut total, mut products) = (0.0f64, 0.0f64);
    for (k, part) in p.chunks_mut(256).enumerate() {
        let at = k * 256..k * 256 + part.len();
        let mut lanes = [0.0f32; LANES];
        match kept {
            KeptPlane::Output(o, lo, hi) => {
                let o = &o[at];
                let mut product_lanes = [0.0f32; LANES];
                let pass = |a: f32| (a > lo) & (a < hi);
                masked_scaled_sum(
                    part,
                    o,
                    pass,
                    scale,
                    &mut lanes,
                    Some((o, &mut product_lanes)),
                );
                products += f64::from(product_lanes.iter().sum::<f32>());
            }
            KeptPlane::Mask(m) => {
                masked_scaled_sum(part, &m[at], |m| m != 0, scale, &mut lanes, None)
            }
            KeptPlane::Nothing => {
                let ones = [1u8; 256];
                masked_scaled_sum(part, &ones[..part.len()], |_| true, scale, &mut lanes, None)
            }
        }
        total += f64::from(lanes.iter().sum::<f32>());
    }
    (total, products)
}

/// `g = pass(kept) ? g : 0`, adding each to `lanes` (lane `i % 16`) and, with `outputs`, its
/// product with the output to the second lanes, before scaling it by `scale`; whole 16-value
/// blocks first (one vector each), then the rest.
#[inline(always)]
fn masked_scaled_sum<K: Copy>(
    g: &mut [f32],
    kept: &[K],
    pass: impl Fn(K) -> bool,
    scale: f32,
    lanes: &mut [f32; LANES],
    mut outputs: Option<(&[f32], &mut [f32; LANES])>,
) {
    let done = g.len() / LANES * LANES;
    let mut blocks = g.chunks_exact_mut(LANES);
    let mut kept_blocks = kept.chunks_exact(LANES);
    for (b, (g, k)) in (&mut blocks).zip(&mut kept_blocks).enumerate() {
        let g: &mut [f32; LANES] = g.try_into().expect("blocks of LANES");
        let k: &[K; LANES] = k.try_into().expect("blocks of LANES");
        match outputs.as_mut() {
            Some((a, products)) => {
                let a: &[f32; LANES] = a[b * LANES..(b + 1) * LANES]
                    .try_into()
                    .expect("blocks of LANES");
                for j in 0..LANES {
                    let v = masked(g[j], pass(k[j]));
                    lanes[j] += v;
                    products[j] += v * a[j];
                    g[j] = v * scale;
                }
            }
            None => {
                for j in 0..LANES {
                    let v = masked(g[j], pass(k[j]));
                    lanes[j] += v;
                    g[j] = v * scale;
                }
            }
        }
    }
    let rest = g[done..].iter_mut().zip(&kept[done..]);
    for (j, (g, &k)) in rest.enumerate() {
        let v = masked(*g, pass(k));
        lanes[j] += v;
        if let Some((a, products)) = outputs.as_mut() {
            products[j] += v * a[done + j];
        }
        *g = v * scale;
    }
}

/// `v` when `keep`, `+0.0` otherwise, without a branch (an AND of the bits, so loops of it
/// vectorise; NaN and infinities are dropped like any value).
#[inline(always)]
fn masked(v: f32, keep: bool) -> f32 {
    f32::from_bits(v.to_bits() & u32::from(keep).wrapping_neg())
}

impl FusedKernels for Flex {
    fn scale_weight(weight: FloatTensor<Self>, scale: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = weight.layout().shape().clone();
        let inputs = (
            contiguous_f32(weight.clone()),
            contiguous_f32(scale.clone()),
        );
        let (Some(w), Some(s)) = inputs else {
            return scale_weight_composed::<Self>(weight, scale);
        };
        let (Some(w), Some(s)) = (w.as_slice::<f32>(), s.as_slice::<f32>()) else {
            return scale_weight_composed::<Self>(weight, scale);
        };
        let Some(row) = rows(w, s) else {
            return scale_weight_composed::<Self>(weight, scale);
        };
        let mut out = vec![0.0f32; w.len()];
        out.par_chunks_mut(row)
            .zip(w.par_chunks(row))
            .zip(s.par_iter())
            .with_min_len((CHUNK / row).max(1))
            .for_each(|((out, w), &s)| {
                for (o, &w) in out.iter_mut().zip(w) {
                    *o = w * s;
                }
            });
        FlexTensor::from_data(TensorData::new(out, shape))
    }

    fn scale_weight_backward(
        d_weight_folded: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let shape = weight.layout().shape().clone();
        let inputs = (
            contiguous_f32(weight.clone()),
            contiguous_f32(scale.clone()),
            contiguous_f32(d_weight_folded.clone()),
        );
        let (Some(w), Some(s), Some(mut d)) = inputs else {
            return scale_weight_backward_composed::<Self>(d_weight_folded, weight, scale);
        };
        // Without the caller's handle, dW''s (contiguous) buffer is ours to overwrite.
        drop(d_weight_folded);
        let (Some(w), Some(s)) = (w.as_slice::<f32>(), s.as_slice::<f32>()) else {
            unreachable!("contiguous f32 tensors have slices");
        };
        let (Some(row), Some((start, end))) = (rows(w, s), d.layout().contiguous_offsets()) else {
            return scale_weight_backward_composed::<Self>(d, weight, scale);
        };
        if end - start != w.len() || d.layout().shape() != &shape {
            return scale_weight_backward_composed::<Self>(d, weight, scale);
        }
        let mut d_scale = vec![0.0f32; s.len()];
        let g: &mut [f32] = &mut d.storage_mut::<f32>()[start..end];
        g.par_chunks_mut(row)
            .zip(w.par_chunks(row))
            .zip(s.par_iter())
            .zip(d_scale.par_iter_mut())
            .with_min_len((CHUNK / row).max(1))
            .for_each(|(((g, w), &s), ds)| {
                let mut acc = 0.0f64;
                for (g, &w) in g.iter_mut().zip(w) {
                    acc += f64::from(*g) * f64::from(w);
                    *g *= s;
                }
                *ds = acc as f32;
            });
        let channels = d_scale.len();
        (
            d,
            FlexTensor::from_data(TensorData::new(d_scale, [channels])),
        )
    }

    fn activation_mask(
        activation: Activation,
        output: FloatTensor<Self>,
    ) -> Option<BoolTensor<Self>> {
        let (lo, hi) = match activation {
            Activation::Identity => return None,
            Activation::Relu => (0.0f32, f32::INFINITY),
            Activation::Relu6 => (0.0f32, 6.0f32),
        };
        let shape = output.layout().shape().clone();
        let Some(a) = contiguous_f32(output.clone()) else {
            return activation.mask::<Self>(output);
        };
        let a = a
            .as_slice::<f32>()
            .expect("contiguous f32 tensors have slices");
        let mut mask = vec![false; a.len()];
        mask.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .for_each(|(m, a)| {
                for (m, &a) in m.iter_mut().zip(a) {
                    *m = (a > lo) & (a < hi);
                }
            });
        Some(FlexTensor::from_data(TensorData::new(mask, shape)))
    }

    fn masked_gradient(mask: BoolTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let fits = mask.layout().contiguous_offsets() == Some((0, mask.bytes().len()))
            && mask.layout().shape() == grad.layout().shape()
            && grad.dtype() == DType::F32;
        if !fits {
            return Activation::backward_masked::<Self>(mask, grad);
        }
        let keep = mask.bytes();
        let zero_where_blocked = |g: &mut [f32], m: &[u8]| {
            for (g, &m) in g.iter_mut().zip(m) {
                *g = if m != 0 { *g } else { 0.0 };
            }
        };
        let mut grad = if grad.is_unique() && grad.layout().is_dense_unique_storage() {
            grad
        } else {
            grad.to_contiguous()
        };
        let Some((start, end)) = grad.layout().contiguous_offsets() else {
            return Activation::backward_masked::<Self>(mask, grad);
        };
        let g = &mut grad.storage_mut::<f32>()[start..end];
        g.par_chunks_mut(CHUNK)
            .zip(keep.par_chunks(CHUNK))
            .for_each(|(g, m)| zero_where_blocked(g, m));
        grad
    }

    fn fold_gradients(
        fold: &FlexFold,
        d_scale: Option<DScale<Self>>,
        d_bias_folded: FloatTensor<Self>,
        bias: bool,
    ) -> BnGradients<Self> {
        let FlexFold { bn, table } = fold;
        let c = table.channels();
        let d = match &d_scale {
            Some(DScale::Weights(d) | DScale::OutputProducts(d)) => vector(d, c).map(Some),
            None => Some(None),
        };
        let (Some(db), Some(d)) = (vector(&d_bias_folded, c), d) else {
            return fold_gradients_composed::<Self>(bn, d_scale, d_bias_folded, bias);
        };
        let from_products = matches!(d_scale, Some(DScale::OutputProducts(_)));
        let as_tensor = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, [c]));
        // The composed formulas in their order (same f32 results), one pass over the channels.
        let (scale, folded) = (table.scale(), table.bias());
        let (inv_std, centered) = (table.inv_std(), table.centered_bias());
        let gamma = d.map(|d| {
            let mut gamma = vec![0.0f32; c];
            let out = &mut gamma[..];
            widest!({
                let rest = db.iter().zip(centered).zip(inv_std);
                if from_products {
                    // d_s = (sum G A - b' sum G) / s.
                    let d_s = d.iter().zip(folded).zip(scale);
                    for (g, (((d, b), s), ((db, x), i))) in out.iter_mut().zip(d_s.zip(rest)) {
                        *g = ((d - b * db) / s + db * x) * i;
                    }
                } else {
                    for (g, (d_s, ((db, x), i))) in out.iter_mut().zip(d.iter().zip(rest)) {
                        *g = (d_s + db * x) * i;
                    }
                }
            });
            as_tensor(gamma)
        });
        let bias = bias.then(|| as_tensor(db.iter().zip(scale).map(|(db, s)| db * s).collect()));
        BnGradients {
            gamma,
            bias,
            beta: d_bias_folded,
        }
    }

    fn scale_on_output() -> bool {
        true
    }

    fn conv_forward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Self> {
        flex_conv::forward(x, weight, geometry)
    }

    fn conv_weight_gradient(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Self> {
        flex_conv::weight_gradient(x, weight, grad, geometry)
    }

    fn conv_input_gradient(
        x_shape: Shape,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Self> {
        flex_conv::input_gradient(x_shape, weight, grad, geometry)
    }

    fn affine_activation(
        y: FloatTensor<Self>,
        scale: Option<FloatTensor<Self>>,
        shift: Option<FloatTensor<Self>>,
        activation: Activation,
    ) -> FloatTensor<Self> {
        if scale.is_none() && shift.is_none() && activation == Activation::Identity {
            return y;
        }
        let Some((c, plane)) = planes(&y).filter(|_| y.dtype() == DType::F32) else {
            return affine_activation_composed::<Self>(y, scale, shift, activation);
        };
        let (Some(s), Some(b)) = (
            channel_vector(scale.clone(), c),
            channel_vector(shift.clone(), c),
        ) else {
            return affine_activation_composed::<Self>(y, scale, shift, activation);
        };
        let s = s.as_ref().and_then(|t| t.as_slice::<f32>());
        let b = b.as_ref().and_then(|t| t.as_slice::<f32>());
        affine_planes(y, plane, activation, |channel| {
            (s.map_or(1.0, |s| s[channel]), b.map_or(0.0, |b| b[channel]))
        })
    }

    fn fold_activation(
        y: FloatTensor<Self>,
        bn: &BnParams<Self>,
        activation: Activation,
    ) -> FloatTensor<Self> {
        let Some((c, plane)) = planes(&y).filter(|_| y.dtype() == DType::F32) else {
            return fold_activation_composed::<Self>(y, bn, activation);
        };
        let Some(fold) = FoldTable::new(bn, c) else {
            return fold_activation_composed::<Self>(y, bn, activation);
        };
        let (scale, bias) = (fold.scale(), fold.bias());
        affine_planes(y, plane, activation, |channel| {
            (scale[channel], bias[channel])
        })
    }

    fn activation_gradient(
        grad: FloatTensor<Self>,
        kept: Option<Kept<Self>>,
        activation: Activation,
        fold: Option<&FlexFold>,
        sums: Sums,
    ) -> ActivationGradient<Self> {
        let composed = |grad, kept| {
            let bn = fold.map(|f| &f.bn);
            activation_gradient_composed::<Self>(grad, kept, activation, bn, sums)
        };
        let Some((c, plane)) = planes(&grad).filter(|_| grad.dtype() == DType::F32) else {
            return composed(grad, kept);
        };
        let s = match fold.map(|f| f.table.scale()) {
            Some(s) if s.len() != c => return composed(grad, kept),
            s => s,
        };
        let shape = grad.layout().shape().clone();
        // The record, contiguous from offset 0 and shaped like the gradient.
        let fits = |t: &FlexTensor| {
            t.layout().shape() == &shape
                && t.layout().contiguous_offsets().is_some_and(|(a, _)| a == 0)
        };
        let output = match &kept {
            Some(Kept::Output(o)) => match contiguous_f32(o.clone()).filter(fits) {
                Some(o) => Some(o),
                None => return composed(grad, kept),
            },
            _ => None,
        };
        let mask = match &kept {
            Some(Kept::Mask(m)) if fits(m) => Some(m.clone()),
            Some(Kept::Mask(_)) => return composed(grad, kept),
            _ => None,
        };
        let (lo, hi) = open_bounds(activation);
        let output = output.as_ref().and_then(|o| o.as_slice::<f32>());
        let mask = mask.as_ref().map(|m| m.bytes());
        let mut g = writable(grad);
        let (start, end) = g.layout().contiguous_offsets().expect("contiguous");
        let data = &mut g.storage_mut::<f32>()[start..end];
        let mut plane_sums = vec![(0.0f64, 0.0f64); data.len() / plane];
        data.par_chunks_mut(plane)
            .zip(plane_sums.par_iter_mut())
            .enumerate()
            .with_min_len((CHUNK / plane).max(1))
            .for_each(|(i, (p, sum))| {
                let scale = s.map_or(1.0, |s| s[i % c]);
                let range = i * plane..(i + 1) * plane;
                let kept = match (output, mask) {
                    (Some(o), _) => KeptPlane::Output(&o[range], lo, hi),
                    (None, Some(m)) => KeptPlane::Mask(&m[range]),
                    (None, None) => KeptPlane::Nothing,
                };
                *sum = gradient_plane(p, kept, scale);
            });
        // Per channel, in plane order (deterministic).
        let per_channel = |pick: fn(&(f64, f64)) -> f64| {
            let mut totals = vec![0.0f64; c];
            for (i, v) in plane_sums.iter().enumerate() {
                totals[i % c] += pick(v);
            }
            let values: Vec<f32> = totals.into_iter().map(|v| v as f32).collect();
            FlexTensor::from_data(TensorData::new(values, [c]))
        };
        ActivationGradient {
            grad: g,
            sums: (sums != Sums::Nothing).then(|| per_channel(|v| v.0)),
            output_products: (sums == Sums::GradientAndOutput && output.is_some())
                .then(|| per_channel(|v| v.1)),
        }
    }

    type OutputFold = FlexFold;

    fn output_fold(bn: BnParams<Self>) -> Result<FlexFold, BnParams<Self>> {
        let c = bn.mean.layout().shape().num_elements();
        match FoldTable::new(&bn, c).filter(FoldTable::invertible) {
            Some(table) => Ok(FlexFold { bn, table }),
            None => Err(bn),
        }
    }

    fn weight_and_scale_gradient(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        geometry: &ConvGeometry,
        fold: &FlexFold,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        // Few output pixels: the dots from the rows of `dW` as they are built.
        let scale = fold.table.scale();
        let fused = flex_conv::weight_gradient_and_dot(&x, &weight, &grad, geometry)
            .filter(|(_, dots)| dots.len() == scale.len());
        let Some((d_weight, dots)) = fused else {
            return weight_and_scale_gradient_composed::<Self>(x, weight, grad, geometry, fold);
        };
        let d_scale: Vec<f32> = dots
            .iter()
            .zip(scale)
            .map(|(&dot, &s)| (dot / f64::from(s)) as f32)
            .collect();
        let channels = d_scale.len();
        let d_scale = FlexTensor::from_data(TensorData::new(d_scale, [channels]));
        (d_weight, d_scale)
    }

    fn scale_gradient(
        d_weight: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        fold: &FlexFold,
    ) -> FloatTensor<Self> {
        // Contiguous f32 operands are read in place (strided ones or other dtypes: composed).
        let (Some(d), Some(w)) = (d_weight.as_slice::<f32>(), weight.as_slice::<f32>()) else {
            return scale_gradient_composed::<Self>(d_weight, weight, &fold.bn);
        };
        let scale = fold.table.scale();
        let Some(row) = rows(w, scale).filter(|_| d.len() == w.len()) else {
            return scale_gradient_composed::<Self>(d_weight, weight, &fold.bn);
        };
        let out: Vec<f32> = d
            .par_chunks(row)
            .zip(w.par_chunks(row))
            .with_min_len((CHUNK / row).max(1))
            .enumerate()
            .map(|(i, (d, w))| (widest!({ dot_f64(d, w) }) / f64::from(scale[i])) as f32)
            .collect();
        let channels = out.len();
        FlexTensor::from_data(TensorData::new(out, [channels]))
    }
}
