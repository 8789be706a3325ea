//! Parameter-sized kernels of the fused op: the weight fold `W' = W * s` and its backward
//! `dW = dW' * s`, `d_s = sum_k dW' * W` (per output channel).
//!
//! They run once per block in forward and again in backward, over every weight of the model
//! (25 M for ResNet-50), whatever the batch size. Composed of backend operations they take
//! five passes over the weights and allocate three weight-sized tensors, single-threaded on
//! Flex when an operand is a transposed view (measured on ResNet-50, batch 1, 112x112: Tune's
//! step 500 ms with the composed kernels, 326 ms with these, Deploy's 232 ms). Backends
//! override them with one fused pass; the default bodies are the composed versions
//! (differentiable on autodiff backends, which is what [`crate::fold`] needs on `Dispatch`).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};

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

/// Backend kernels over a block's weights.
pub(crate) trait FoldKernels: Backend {
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
}

impl FoldKernels for burn::backend::Dispatch {}

impl<B: Backend, C: burn_autodiff::checkpoint::strategy::CheckpointStrategy> FoldKernels
    for burn_autodiff::Autodiff<B, C>
{
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl FoldKernels for burn_cubecl::CubeBackend {}

#[cfg(feature = "flex")]
mod flex {
    //! One multi-threaded pass per kernel on Flex's f32 tensors (other dtypes: composed).

    use burn::backend::Flex;
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::{DType, TensorData};
    use burn_flex::FlexTensor;
    use rayon::prelude::*;

    use super::{FoldKernels, scale_weight_backward_composed};
    use crate::fold::scale_weight_composed;

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

    impl FoldKernels for Flex {
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
    }
}
