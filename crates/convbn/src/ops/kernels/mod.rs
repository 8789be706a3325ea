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
#[cfg(all(test, feature = "flex"))]
mod tests;

use burn::backend::Backend;
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::tensor::Shape;

use crate::activation::Activation;
use crate::fold::scale_weight_composed;
use crate::geometry::ConvGeometry;
use crate::ops::Kept;
use crate::ops::conv::{conv_weight_backward, conv_x_backward_from_shape};
pub(crate) use composed::*;

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

    /// From `dL/dA` and what the activation kept: `(G * scale, sum of G per channel)` with
    /// `G = dL/dZ` (axis 1 is the channel; the sums only when `sums`, `scale` 1 when absent).
    fn activation_gradient(
        grad: FloatTensor<Self>,
        kept: Option<Kept<Self>>,
        activation: Activation,
        scale: Option<FloatTensor<Self>>,
        sums: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        activation_gradient_composed::<Self>(grad, kept, activation, scale, sums)
    }

    /// Whether `scale` (`s`, `[C]`) may be divided out of a weight gradient: backward on the
    /// output side computes `dW = dW' * s` directly and recovers `sum_k dW' * W` as
    /// `sum_k dW * W / s`, exact enough only when no `s` is zero, tiny or non-finite. Backends
    /// that cannot check cheaply answer `false` (the weight-side backward is used).
    fn invertible_scale(_scale: &FloatTensor<Self>) -> bool {
        false
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

    /// `sum over all but the first axis of d_weight * weight`, divided by `scale` per output
    /// channel: `sum_k dW' * W` from `dW = dW' * s`.
    fn scale_gradient(
        d_weight: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        scale_gradient_composed::<Self>(d_weight, weight, scale)
    }
}

impl FusedKernels for burn::backend::Dispatch {}

impl<B: Backend, C: burn_autodiff::checkpoint::strategy::CheckpointStrategy> FusedKernels
    for burn_autodiff::Autodiff<B, C>
{
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl FusedKernels for burn_cubecl::CubeBackend {}
