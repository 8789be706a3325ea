//! Backend kernels of the fused op: the weight fold `W' = W * s` and its backward
//! `dW = dW' * s`, `d_s = sum_k dW' * W` (per output channel), and the activation's one-byte
//! mask with the masked gradient (frozen parameters).
//!
//! The weight kernels run once per block in forward and again in backward, over every weight of the model
//! (25 M for ResNet-50), whatever the batch size. Composed of backend operations they take
//! five passes over the weights and allocate three weight-sized tensors, single-threaded on
//! Flex when an operand is a transposed view (measured on ResNet-50, batch 1, 112x112: Tune's
//! step 500 ms with the composed kernels, 326 ms with these, Deploy's 232 ms). Backends
//! override them with one fused pass; the default bodies are the composed versions
//! (differentiable on autodiff backends, which is what [`crate::fold`] needs on `Dispatch`).

use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{Backend, TensorMetadata};

use crate::activation::Activation;
use crate::fold::scale_weight_composed;

/// The composed weight-fold backward: `(dW' * s, sum_k dW' * W)`.
pub(crate) fn scale_weight_backward_composed<B: Backend>(
    d_weight_folded: FloatTensor<B>,
    weight: FloatTensor<B>,
    scale: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let out_channels = weight.shape()[0];
    let per_weight = B::float_mul(d_weight_folded.clone(), weight);
    let count = per_weight.shape().num_elements();
    let per_weight = B::float_reshape(per_weight, [out_channels, count / out_channels].into());
    let d_scale = B::float_reshape(B::float_sum_dim(per_weight, 1), [out_channels].into());
    (scale_weight_composed::<B>(d_weight_folded, scale), d_scale)
}

/// Backend kernels of the fused op (defaults: composed backend operations).
pub(crate) trait FusedKernels: Backend {
    /// `W * s`, `s` (`[C_out]`) broadcast over the output-channel axis of `W`.
    fn scale_weight(weight: FloatTensor<Self>, scale: FloatTensor<Self>) -> FloatTensor<Self> {
        scale_weight_composed::<Self>(weight, scale)
    }

    /// `(dW' * s, sum over all but the first axis of dW' * W)`: the weight gradient and the
    /// per-channel gradient of `s` through `W' = W * s`.
    fn scale_weight_backward(
        d_weight_folded: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        scale_weight_backward_composed::<Self>(d_weight_folded, weight, scale)
    }

    /// Where `activation` passes gradients, read off its output `A`: one byte per element
    /// (`None` for the identity).
    fn activation_mask(
        activation: Activation,
        output: FloatTensor<Self>,
    ) -> Option<BoolTensor<Self>> {
        activation.mask::<Self>(output)
    }

    /// `dL/dZ`: `dL/dA` where `mask` is set, zero elsewhere.
    fn masked_gradient(mask: BoolTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Activation::backward_masked::<Self>(mask, grad)
    }
}

impl FusedKernels for burn::backend::Dispatch {}

impl<B: Backend, C: burn_autodiff::checkpoint::strategy::CheckpointStrategy> FusedKernels
    for burn_autodiff::Autodiff<B, C>
{
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl FusedKernels for burn_cubecl::CubeBackend {}

#[cfg(feature = "flex")]
mod flex {
    //! One multi-threaded pass per kernel on Flex's f32 tensors (other dtypes: composed).

    use burn::backend::Flex;
    use burn::backend::tensor::{BoolTensor, FloatTensor};
    use burn::tensor::{DType, TensorData};
    use burn_flex::FlexTensor;
    use rayon::prelude::*;

    use super::{FusedKernels, scale_weight_backward_composed};
    use crate::activation::Activation;
    use crate::fold::scale_weight_composed;

    /// Elements per rayon task of the element-wise kernels.
    const CHUNK: usize = 1 << 14;

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
        (!s.is_empty() && !w.is_empty() && w.len().is_multiple_of(s.len()))
            .then(|| w.len() / s.len())
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
            let (Some(row), Some((start, end))) = (rows(w, s), d.layout().contiguous_offsets())
            else {
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
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::TensorData;
    use burn_flex::FlexTensor;

    use super::FusedKernels;
    use crate::activation::Activation;

    fn floats(v: &[f32]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(v.to_vec(), [2, v.len() / 2]))
    }

    fn read(t: FlexTensor) -> TensorData {
        t.into_data()
    }

    /// The Flex kernels agree with the composed backend operations, bounds included.
    #[test]
    fn flex_mask_kernels_match_the_composed_operations() {
        let out = [-1.0, 0.0, 1e-30, 3.0, 6.0, 5.999, 7.0, f32::NAN];
        let grad = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        for act in [Activation::Relu, Activation::Relu6] {
            let fast = <Flex as FusedKernels>::activation_mask(act, floats(&out)).unwrap();
            let composed = act.mask::<Flex>(floats(&out)).unwrap();
            let (f, c) = (read(fast.clone()), read(composed.clone()));
            assert_eq!(f.as_bytes(), c.as_bytes(), "{act:?} masks");
            let g_fast = <Flex as FusedKernels>::masked_gradient(fast, floats(&grad));
            let g_composed = Activation::backward_masked::<Flex>(composed, floats(&grad));
            assert_eq!(read(g_fast), read(g_composed), "{act:?} gradients");
        }
        assert!(
            <Flex as FusedKernels>::activation_mask(Activation::Identity, floats(&out)).is_none()
        );
    }
}
