//! The composed default bodies of [`FusedKernels`]: each kernel as backend operations
//! (differentiable on autodiff backends, several passes over the data).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};

use super::{ActivationGradient, BnGradients, DScale, FusedKernels, Sums};
use crate::activation::Activation;
use crate::fold::{BnParams, FoldVectors, fold_vectors, per_channel, scale_weight_composed};
use crate::geometry::ConvGeometry;
use crate::ops::Kept;
use crate::ops::conv::sum_per_channel;

/// `sum_k d * w` over all but the first axis: one value per output channel (`[C_out]`).
fn per_channel_dot<B: Backend>(d: FloatTensor<B>, weight: FloatTensor<B>) -> FloatTensor<B> {
    let out_channels = weight.shape()[0];
    let per_weight = B::float_mul(d, weight);
    let count = per_weight.shape().num_elements();
    let per_weight = B::float_reshape(per_weight, [out_channels, count / out_channels].into());
    B::float_reshape(B::float_sum_dim(per_weight, 1), [out_channels].into())
}

/// The composed weight-fold backward: `(dW' * s, sum_k dW' * W)`.
pub(crate) fn scale_weight_backward_composed<B: Backend>(
    d_weight_folded: FloatTensor<B>,
    weight: FloatTensor<B>,
    scale: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let d_scale = per_channel_dot::<B>(d_weight_folded.clone(), weight);
    (scale_weight_composed::<B>(d_weight_folded, scale), d_scale)
}

/// `t * s`, `s` (`[C]`) broadcast over axis 1 of `t` (1 when absent).
pub(crate) fn scale_channels<B: Backend>(
    t: FloatTensor<B>,
    scale: Option<FloatTensor<B>>,
) -> FloatTensor<B> {
    match scale {
        Some(s) => {
            let rank = t.shape().num_dims();
            B::float_mul(t, per_channel::<B>(s, rank, 1))
        }
        None => t,
    }
}

/// The composed [`FusedKernels::affine_activation`].
pub(crate) fn affine_activation_composed<B: Backend>(
    y: FloatTensor<B>,
    scale: Option<FloatTensor<B>>,
    shift: Option<FloatTensor<B>>,
    activation: Activation,
) -> FloatTensor<B> {
    let y = scale_channels::<B>(y, scale);
    let y = match shift {
        Some(b) => {
            let rank = y.shape().num_dims();
            B::float_add(y, per_channel::<B>(b, rank, 1))
        }
        None => y,
    };
    activation.forward::<B>(y)
}

/// The composed [`FusedKernels::fold_activation`]: the fold's vectors, then
/// [`FusedKernels::affine_activation`].
pub(crate) fn fold_activation_composed<B: FusedKernels>(
    y: FloatTensor<B>,
    bn: &BnParams<B>,
    activation: Activation,
) -> FloatTensor<B> {
    let v = fold_vectors::<B>(bn.clone());
    B::affine_activation(y, Some(v.scale), Some(v.bias), activation)
}

/// The composed [`FusedKernels::activation_gradient`]: `s` from the fold's vectors of `fold`.
pub(crate) fn activation_gradient_composed<B: FusedKernels>(
    grad: FloatTensor<B>,
    kept: Option<Kept<B>>,
    activation: Activation,
    fold: Option<&BnParams<B>>,
    sums: Sums,
) -> ActivationGradient<B> {
    let scale = fold.map(|bn| fold_vectors::<B>(bn.clone()).scale);
    let g = match kept {
        Some(Kept::Output(output)) => activation.backward::<B>(output, grad),
        Some(Kept::Mask(mask)) => B::masked_gradient(mask, grad),
        None => grad,
    };
    let channel_sums = (sums != Sums::Nothing).then(|| sum_per_channel::<B>(g.clone()));
    ActivationGradient {
        grad: scale_channels::<B>(g, scale),
        sums: channel_sums,
        output_products: None,
    }
}

/// The composed [`FusedKernels::scale_gradient`]: `s` from the fold's vectors of `bn`.
pub(crate) fn scale_gradient_composed<B: Backend>(
    d_weight: FloatTensor<B>,
    weight: FloatTensor<B>,
    bn: &BnParams<B>,
) -> FloatTensor<B> {
    let scale = fold_vectors::<B>(bn.clone()).scale;
    B::float_div(per_channel_dot::<B>(d_weight, weight), scale)
}

/// The composed [`FusedKernels::weight_and_scale_gradient`]: the backend's weight gradient,
/// then its [`FusedKernels::scale_gradient`] on it.
pub(crate) fn weight_and_scale_gradient_composed<B: FusedKernels>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    geometry: &ConvGeometry,
    fold: &B::OutputFold,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let d_weight = B::conv_weight_gradient(x, weight.clone(), grad, geometry);
    let d_scale = B::scale_gradient(d_weight.clone(), weight, fold);
    (d_weight, d_scale)
}

/// The composed [`FusedKernels::fold_gradients`]: the fold's vectors, then the backend's
/// [`FusedKernels::bn_gradients`].
pub(crate) fn fold_gradients_composed<B: FusedKernels>(
    bn: &BnParams<B>,
    d_scale: Option<DScale<B>>,
    d_bias_folded: FloatTensor<B>,
    bias: bool,
) -> BnGradients<B> {
    let v = fold_vectors::<B>(bn.clone());
    B::bn_gradients(&v, d_scale, d_bias_folded, bias)
}

/// The composed [`FusedKernels::bn_gradients`].
pub(crate) fn bn_gradients_composed<B: Backend>(
    v: &FoldVectors<B>,
    d_scale: Option<DScale<B>>,
    d_bias_folded: FloatTensor<B>,
    bias: bool,
) -> BnGradients<B> {
    let d_scale = d_scale.map(|d| match d {
        DScale::Weights(d) => d,
        DScale::OutputProducts(p) => B::float_div(
            B::float_sub(p, B::float_mul(v.bias.clone(), d_bias_folded.clone())),
            v.scale.clone(),
        ),
    });
    let gamma = d_scale.map(|d| {
        let d = B::float_add(
            d,
            B::float_mul(d_bias_folded.clone(), v.centered_bias.clone()),
        );
        B::float_mul(d, v.inv_std.clone())
    });
    BnGradients {
        gamma,
        bias: bias.then(|| B::float_mul(d_bias_folded.clone(), v.scale.clone())),
        beta: d_bias_folded,
    }
}
