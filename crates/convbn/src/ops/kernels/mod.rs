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

//!
//! Files: the trait with its composed defaults (here, bodies in `composed`), Flex's one-pass
//! kernels (`flex`), and their tests against the composed versions and burn's own kernels
//! (`tests`).

mod composed;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
mod flex_conv;
#[cfg(all(test, feature = "flex"))]
mod tests;

use std::borrow::Borrow;

use burn::backend::Backend;
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::tensor::Shape;

use crate::activation::Activation;
use crate::fold::{BnParams, FoldVectors, scale_weight_composed};
use crate::geometry::ConvGeometry;
use crate::ops::Kept;
use crate::ops::conv::{conv, conv_weight_backward, conv_x_backward_from_shape};
pub(crate) use composed::*;

/// Which per-channel sums [`FusedKernels::activation_gradient`] computes with `G`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sums {
    /// None.
    Nothing,
    /// `sum G` (the gradient of the folded bias).
    Gradient,
    /// `sum G` and, where the output `A` was kept, `sum G * A`.
    GradientAndOutput,
}

/// What [`FusedKernels::activation_gradient`] returns.
pub(crate) struct ActivationGradient<B: Backend> {
    /// `G * scale`.
    pub grad: FloatTensor<B>,
    /// `sum G` per channel, when asked for.
    pub sums: Option<FloatTensor<B>>,
    /// `sum G * A` per channel, when asked for and computed.
    pub output_products: Option<FloatTensor<B>>,
}

/// Where `d_s = dL/ds` (per channel) comes from in backward.
pub(crate) enum DScale<B: Backend> {
    /// `sum_k dW' W` over each output channel's weights.
    Weights(FloatTensor<B>),
    /// `sum G * A` over each channel of the output (where `A` was kept): `d_s = (sum G A - b'
    /// sum G) / s`.
    OutputProducts(FloatTensor<B>),
}

/// The gradients of a block's BN vectors and conv bias.
pub(crate) struct BnGradients<B: Backend> {
    /// `dgamma`, when `d_s` was given.
    pub gamma: Option<FloatTensor<B>>,
    /// `db = db' * s`, when asked for.
    pub bias: Option<FloatTensor<B>>,
    /// `dbeta = db'`.
    pub beta: FloatTensor<B>,
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

    /// Whether this backend applies BN's scale to the conv output rather than to the weight:
    /// `conv(X, W') + b' = conv(X, W) * s + b'`, one pass over the output fused with the bias
    /// and the activation ([`affine_activation`](Self::affine_activation)), `W'` never
    /// formed; backward then scales `G` instead of refolding `W` (see `ops::autodiff`).
    /// Default: fold into the weight (one small pass over `W`, the bias added by the conv).
    fn scale_on_output() -> bool {
        false
    }

    /// `A(y * scale + shift)`, `scale` and `shift` (`[C]`) broadcast over axis 1 of `y`
    /// (`[N, C, ...]`); absent ones count as 1 and 0.
    fn affine_activation(
        y: FloatTensor<Self>,
        scale: Option<FloatTensor<Self>>,
        shift: Option<FloatTensor<Self>>,
        activation: Activation,
    ) -> FloatTensor<Self> {
        affine_activation_composed::<Self>(y, scale, shift, activation)
    }

    /// `A(y * s + b')` with `s`, `b'` the fold of `bn` ([`crate::fold`]): Tune's forward on
    /// the output side. Backends may compute the fold in their own buffer, without the
    /// vectors as tensors (Flex: one heap block per call, see `flex.rs`).
    fn fold_activation(
        y: FloatTensor<Self>,
        bn: &BnParams<Self>,
        activation: Activation,
    ) -> FloatTensor<Self> {
        fold_activation_composed::<Self>(y, bn, activation)
    }

    /// From `dL/dA` and what the activation kept: `G * s` with `G = dL/dZ` and `s` the scale
    /// of `fold` (1 without one), and per channel (axis 1) `sum G` when `sums` asks for it and
    /// `sum G * A` when it asks for that too and `A` (the op's output) was kept. Backends that
    /// cannot give `sum G * A` in the same pass leave it out (the default).
    fn activation_gradient(
        grad: FloatTensor<Self>,
        kept: Option<Kept<Self>>,
        activation: Activation,
        fold: Option<&Self::OutputFold>,
        sums: Sums,
    ) -> ActivationGradient<Self> {
        let bn = fold.map(Borrow::borrow);
        activation_gradient_composed::<Self>(grad, kept, activation, bn, sums)
    }

    /// A block's fold prepared for the output-side backward by
    /// [`output_fold`](Self::output_fold), once per backward, and read by each of that side's
    /// kernels: the BN parameters (which the composed bodies read) and whatever the backend
    /// derives from them (Flex: the fold's four columns in one buffer).
    type OutputFold: Borrow<BnParams<Self>>;

    /// `bn` prepared for backward on the output side (see `ops::autodiff`), or `bn` back when
    /// that side is not taken: the backend puts `s` on the weights (the default), or some `s`
    /// is zero, tiny or non-finite, so that `sum_k dW' * W` could not be recovered exactly
    /// enough as `sum_k dW * W / s` from `dW = dW' * s`.
    fn output_fold(bn: BnParams<Self>) -> Result<Self::OutputFold, BnParams<Self>> {
        Err(bn)
    }

    /// `conv(x, weight)` without bias (every mode's conv node).
    fn conv_forward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Self> {
        conv::<Self>(x, weight, None, geometry)
    }

    /// From `db' = sum G` and `d_s`: `dgamma = (d_s + db' (b - mean)) / sqrt(var + eps)`,
    /// `db = db' s` (when `bias`), `dbeta = db'`, with the fold's vectors `v`.
    fn bn_gradients(
        v: &FoldVectors<Self>,
        d_scale: Option<DScale<Self>>,
        d_bias_folded: FloatTensor<Self>,
        bias: bool,
    ) -> BnGradients<Self> {
        bn_gradients_composed::<Self>(v, d_scale, d_bias_folded, bias)
    }

    /// [`bn_gradients`](Self::bn_gradients) with the output side's prepared fold.
    fn fold_gradients(
        fold: &Self::OutputFold,
        d_scale: Option<DScale<Self>>,
        d_bias_folded: FloatTensor<Self>,
        bias: bool,
    ) -> BnGradients<Self> {
        fold_gradients_composed::<Self>(fold.borrow(), d_scale, d_bias_folded, bias)
    }

    /// `dL/dW` of `conv(x, weight)` from the output gradient (every mode's conv node).
    fn conv_weight_gradient(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Self> {
        conv_weight_backward::<Self>(x, weight, grad, geometry)
    }

    /// `dL/dX` of `conv(X, weight)` from the output gradient, knowing only `X`'s shape.
    fn conv_input_gradient(
        x_shape: Shape,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Self> {
        conv_x_backward_from_shape::<Self>(x_shape, weight, grad, geometry)
    }

    /// `(dW, d_s)`: [`conv_weight_gradient`](Self::conv_weight_gradient) and
    /// [`scale_gradient`](Self::scale_gradient) of it. Backends may compute both in one pass
    /// (Flex: convolutions over few output pixels, where a second pass over `dW` and `W` would
    /// cost as much as the product).
    fn weight_and_scale_gradient(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        geometry: &ConvGeometry,
        fold: &Self::OutputFold,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        weight_and_scale_gradient_composed::<Self>(x, weight, grad, geometry, fold)
    }

    /// `sum over all but the first axis of d_weight * weight`, divided per output channel by
    /// the scale `s` of the output side's prepared fold: `sum_k dW' * W` from `dW = dW' * s`.
    fn scale_gradient(
        d_weight: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        fold: &Self::OutputFold,
    ) -> FloatTensor<Self> {
        scale_gradient_composed::<Self>(d_weight, weight, fold.borrow())
    }
}

impl FusedKernels for burn::backend::Dispatch {
    type OutputFold = BnParams<Self>;
}

impl<B: Backend, C: burn_autodiff::checkpoint::strategy::CheckpointStrategy> FusedKernels
    for burn_autodiff::Autodiff<B, C>
{
    type OutputFold = BnParams<Self>;
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl FusedKernels for burn_cubecl::CubeBackend {
    type OutputFold = BnParams<Self>;
}
