//! One multi-threaded pass per kernel on Flex's f32 tensors (other dtypes: composed).

use burn::backend::Flex;
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::tensor::{DType, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::{
    FusedKernels, activation_gradient_composed, affine_activation_composed,
    scale_gradient_composed, scale_weight_backward_composed,
};
use crate::activation::Activation;
use crate::fold::scale_weight_composed;
use crate::geometry::ConvGeometry;
use crate::ops::Kept;
use crate::ops::conv::{conv_weight_backward, conv_x_backward_from_shape};
use crate::ops::depthwise::Depthwise;
use burn::tensor::Shape;

/// The convolution as a [`Depthwise`] one, when it is: 2-d, one filter per channel, f32.
pub(super) fn depthwise(
    x_shape: &Shape,
    weight: &FlexTensor,
    grad: &FlexTensor,
    geometry: &ConvGeometry,
) -> Option<Depthwise> {
    let w = weight.layout().shape();
    let g = grad.layout().shape();
    let fits = geometry.spatial() == 2
        && x_shape.num_dims() == 4
        && w[1] == 1
        && geometry.groups == x_shape[1]
        && w[0] == x_shape[1]
        && g[1] == x_shape[1]
        && weight.dtype() == DType::F32
        && grad.dtype() == DType::F32;
    fits.then(|| Depthwise {
        batch: x_shape[0],
        channels: x_shape[1],
        input: [x_shape[2], x_shape[3]],
        output: [g[2], g[3]],
        kernel: [w[2], w[3]],
        stride: [geometry.stride[0], geometry.stride[1]],
        padding: [geometry.padding[0].0, geometry.padding[1].0],
        dilation: [geometry.dilation[0], geometry.dilation[1]],
    })
}

/// The f32 values of a tensor in order (no copy when contiguous from the start).
fn values(t: &FlexTensor) -> Option<FlexTensor> {
    contiguous_f32(t.clone()).filter(|t| t.as_slice::<f32>().is_some())
}

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
    if t.dtype() != DType::F32 {
        return None;
    }
    if t.layout().contiguous_offsets().is_some() {
        return Some(t);
    }
    Some(t.to_contiguous())
}

/// `(weights per output channel, channels)` when `w` splits evenly into `s.len()` rows.
fn rows(w: &[f32], s: &[f32]) -> Option<usize> {
    (!s.is_empty() && !w.is_empty() && w.len().is_multiple_of(s.len())).then(|| w.len() / s.len())
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

    fn scale_on_output() -> bool {
        true
    }

    fn conv_weight_gradient(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Self> {
        let shape = x.layout().shape().clone();
        let direct =
            depthwise(&shape, &weight, &grad, geometry).filter(|_| x.dtype() == DType::F32);
        let (Some(d), Some(xv), Some(gv)) = (direct, values(&x), values(&grad)) else {
            return conv_weight_backward::<Self>(x, weight, grad, geometry);
        };
        let (xs, gs) = (xv.as_slice::<f32>(), gv.as_slice::<f32>());
        let (Some(xs), Some(gs)) = (xs, gs) else {
            unreachable!("checked by values()");
        };
        let out = d.weight_gradient(xs, gs);
        FlexTensor::from_data(TensorData::new(out, weight.layout().shape().clone()))
    }

    fn conv_input_gradient(
        x_shape: Shape,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Self> {
        let direct = depthwise(&x_shape, &weight, &grad, geometry);
        let (Some(d), Some(wv), Some(gv)) = (direct, values(&weight), values(&grad)) else {
            return conv_x_backward_from_shape::<Self>(x_shape, weight, grad, geometry);
        };
        let (ws, gs) = (wv.as_slice::<f32>(), gv.as_slice::<f32>());
        let (Some(ws), Some(gs)) = (ws, gs) else {
            unreachable!("checked by values()");
        };
        let out = d.input_gradient(ws, gs);
        FlexTensor::from_data(TensorData::new(out, x_shape))
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
        let mut y = writable(y);
        let (start, end) = y.layout().contiguous_offsets().expect("contiguous");
        let data = &mut y.storage_mut::<f32>()[start..end];
        data.par_chunks_mut(plane)
            .enumerate()
            .with_min_len((CHUNK / plane).max(1))
            .for_each(|(i, p)| {
                let (a, b) = (s.map_or(1.0, |s| s[i % c]), b.map_or(0.0, |b| b[i % c]));
                for v in p.iter_mut() {
                    *v = activate(activation, *v * a + b);
                }
            });
        y
    }

    fn activation_gradient(
        grad: FloatTensor<Self>,
        kept: Option<Kept<Self>>,
        activation: Activation,
        scale: Option<FloatTensor<Self>>,
        sums: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        let composed = |grad, kept, scale| {
            activation_gradient_composed::<Self>(grad, kept, activation, scale, sums)
        };
        let Some((c, plane)) = planes(&grad).filter(|_| grad.dtype() == DType::F32) else {
            return composed(grad, kept, scale);
        };
        let Some(s) = channel_vector(scale.clone(), c) else {
            return composed(grad, kept, scale);
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
                None => return composed(grad, kept, scale),
            },
            _ => None,
        };
        let mask = match &kept {
            Some(Kept::Mask(m)) if fits(m) => Some(m.clone()),
            Some(Kept::Mask(_)) => return composed(grad, kept, scale),
            _ => None,
        };
        let (lo, hi) = open_bounds(activation);
        let s = s.as_ref().and_then(|t| t.as_slice::<f32>());
        let output = output.as_ref().and_then(|o| o.as_slice::<f32>());
        let mask = mask.as_ref().map(|m| m.bytes());
        let mut g = writable(grad);
        let (start, end) = g.layout().contiguous_offsets().expect("contiguous");
        let data = &mut g.storage_mut::<f32>()[start..end];
        let mut plane_sums = vec![0.0f64; data.len() / plane];
        data.par_chunks_mut(plane)
            .zip(plane_sums.par_iter_mut())
            .enumerate()
            .with_min_len((CHUNK / plane).max(1))
            .for_each(|(i, (p, sum))| {
                let scale = s.map_or(1.0, |s| s[i % c]);
                let range = i * plane..(i + 1) * plane;
                let mut total = 0.0f64;
                // Partial sums in f32 (vectorised), accumulated in f64.
                for (k, part) in p.chunks_mut(256).enumerate() {
                    let at = range.start + k * 256..range.start + k * 256 + part.len();
                    let mut acc = 0.0f32;
                    match (output, mask) {
                        (Some(o), _) => {
                            for (g, &a) in part.iter_mut().zip(&o[at]) {
                                let v = if (a > lo) & (a < hi) { *g } else { 0.0 };
                                acc += v;
                                *g = v * scale;
                            }
                        }
                        (None, Some(m)) => {
                            for (g, &m) in part.iter_mut().zip(&m[at]) {
                                let v = if m != 0 { *g } else { 0.0 };
                                acc += v;
                                *g = v * scale;
                            }
                        }
                        (None, None) => {
                            for g in part.iter_mut() {
                                acc += *g;
                                *g *= scale;
                            }
                        }
                    }
                    total += f64::from(acc);
                }
                *sum = total;
            });
        let channel_sums = sums.then(|| {
            let mut per_channel = vec![0.0f64; c];
            for (i, v) in plane_sums.iter().enumerate() {
                per_channel[i % c] += v;
            }
            let values: Vec<f32> = per_channel.into_iter().map(|v| v as f32).collect();
            FlexTensor::from_data(TensorData::new(values, [c]))
        });
        (g, channel_sums)
    }

    fn invertible_scale(scale: &FloatTensor<Self>) -> bool {
        contiguous_f32(scale.clone())
            .and_then(|s| {
                s.as_slice::<f32>().map(|s| {
                    s.iter()
                        .all(|v| v.is_finite() && (1e-8..=1e8).contains(&v.abs()))
                })
            })
            .unwrap_or(false)
    }

    fn scale_gradient(
        d_weight: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let inputs = (
            contiguous_f32(d_weight.clone()),
            contiguous_f32(weight.clone()),
            contiguous_f32(scale.clone()),
        );
        let (Some(d), Some(w), Some(s)) = inputs else {
            return scale_gradient_composed::<Self>(d_weight, weight, scale);
        };
        let (Some(d), Some(w), Some(s)) = (
            d.as_slice::<f32>(),
            w.as_slice::<f32>(),
            s.as_slice::<f32>(),
        ) else {
            return scale_gradient_composed::<Self>(d_weight, weight, scale);
        };
        let Some(row) = rows(w, s).filter(|_| d.len() == w.len()) else {
            return scale_gradient_composed::<Self>(d_weight, weight, scale);
        };
        let out: Vec<f32> = d
            .par_chunks(row)
            .zip(w.par_chunks(row))
            .zip(s.par_iter())
            .map(|((d, w), &s)| {
                let dot: f64 = d
                    .iter()
                    .zip(w)
                    .map(|(&d, &w)| f64::from(d) * f64::from(w))
                    .sum();
                (dot / f64::from(s)) as f32
            })
            .collect();
        let channels = out.len();
        FlexTensor::from_data(TensorData::new(out, [channels]))
    }
}
