//! The fused Tune convolution as a burn backend extension.
//!
//! [`TuneConvOps::tune_conv`] computes `A(conv(X, W') + b')` with `W'`, `b'` folded on the fly
//! (see [`crate::fold`]). On plain backends the default body composes backend operations. On
//! autodiff backends ([`autodiff`]) it is one graph node with its own backward that keeps only
//! `X` (plus references to the parameters, which are alive anyway) and recomputes `W'` during
//! backward, so Tune retains no more activation memory than Deploy. A fused activation `A`
//! (ReLU, ReLU6) takes its mask from the op's output, which the next layer keeps anyway.

mod activation_node;
mod autodiff;
mod backends;
pub(crate) mod conv;
#[cfg(feature = "flex")]
mod depthwise;
#[cfg(feature = "flex")]
mod gemm_conv;
pub(crate) mod kernels;
#[cfg(feature = "flex")]
mod lanes;
#[cfg(feature = "flex")]
mod thin_weight_gradient;
#[cfg(feature = "flex")]
mod widest;
mod window;

pub(crate) use activation_node::Kept;

use burn::backend::TensorMetadata;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};

use crate::activation::Activation;
use crate::fold::{BnParams, fold_primitives_with, scale_weight_composed};
use crate::geometry::ConvGeometry;
use conv::conv;

/// The convolution kernels every mode's conv node runs on the CPU backend (Flex), callable on
/// their own for benchmarks (`examples/conv_kernels.rs`): 2-d depthwise convolutions walk each
/// channel's plane, other 2-d convolutions are matrix products over an im2col, the rest are
/// burn's kernels.
#[cfg(feature = "flex")]
pub mod cpu {
    use burn::backend::Flex;
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::Shape;

    use super::kernels::FusedKernels;
    use crate::geometry::ConvGeometry;

    /// `conv(x, weight)` without bias.
    pub fn conv_forward(
        x: FloatTensor<Flex>,
        weight: FloatTensor<Flex>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Flex> {
        <Flex as FusedKernels>::conv_forward(x, weight, geometry)
    }

    /// `dL/dX` of `conv(X, weight)` from the output gradient, knowing only `X`'s shape.
    pub fn conv_input_gradient(
        x_shape: Shape,
        weight: FloatTensor<Flex>,
        grad: FloatTensor<Flex>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Flex> {
        <Flex as FusedKernels>::conv_input_gradient(x_shape, weight, grad, geometry)
    }

    /// `dL/dW` of `conv(x, W)` from the output gradient (`weight` supplies the shape).
    pub fn conv_weight_gradient(
        x: FloatTensor<Flex>,
        weight: FloatTensor<Flex>,
        grad: FloatTensor<Flex>,
        geometry: &ConvGeometry,
    ) -> FloatTensor<Flex> {
        <Flex as FusedKernels>::conv_weight_gradient(x, weight, grad, geometry)
    }
}

/// Backend operations for Tune-mode ConvBN blocks.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Autodiff,
)]
pub trait TuneConvOps: Backend {
    /// `A(conv(x, W') + b')`, with `W' = W*s`, `b' = (b-mean)*s + beta`,
    /// `s = gamma/sqrt(var+eps)` and `A` the fused `activation`.
    ///
    /// Shapes: `x` `[N, C_in, ...]`, `weight` `[C_out, C_in/groups, k...]`, every vector
    /// `[C_out]`; rank 3, 4 or 5 as given by `geometry`. A block without conv bias passes an
    /// empty `bias` (shape `[0]`: `b = 0`, nothing computed or kept for it), a non-affine one
    /// ones and zeros as untracked constants. Gradients (on autodiff backends)
    /// flow to the tracked ones of `x`, `weight`, `bias`, `gamma` and `beta`; the running
    /// statistics are constants. With an activation, the autodiff backward takes the
    /// activation's mask from the op's output (see [`Activation`]).
    #[allow(clippy::too_many_arguments)]
    fn tune_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        running_mean: FloatTensor<Self>,
        running_var: FloatTensor<Self>,
        eps: f64,
        geometry: ConvGeometry,
        activation: Activation,
    ) -> FloatTensor<Self> {
        let bn = BnParams {
            bias: present::<Self>(bias),
            gamma: Some(gamma),
            beta: Some(beta),
            mean: running_mean,
            var: running_var,
            eps,
        };
        tune_forward::<Self>(
            x,
            weight,
            bn,
            &geometry,
            activation,
            scale_weight_composed::<Self>,
        )
    }

    /// `A(z)` for a standalone activation; on autodiff backends its backward keeps the
    /// output `A` (for the mask) rather than `z`: the output is the next layer's input, kept
    /// anyway, so the activation itself costs no memory (like PyTorch's in-place ReLU).
    fn fused_activation(z: FloatTensor<Self>, activation: Activation) -> FloatTensor<Self> {
        activation.forward::<Self>(z)
    }

    /// `A(conv(x, weight) + bias)`: every mode's convolution but Tune's (Deploy's with its
    /// activation fused, Train's and Eval's before BN with none).
    ///
    /// On autodiff backends one graph node keeping `X` (only when `weight` needs a gradient)
    /// and what the activation's mask needs, like [`tune_conv`](Self::tune_conv) without the
    /// fold; so Deploy and Tune keep the same tensors.
    fn conv_activation(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: ConvGeometry,
        activation: Activation,
    ) -> FloatTensor<Self> {
        activation.forward::<Self>(conv::<Self>(x, weight, Some(bias), &geometry))
    }

    /// [`conv_activation`](Self::conv_activation) of a convolution without bias (Train's and
    /// Eval's before BN, blocks without conv bias): no pass adding zeros.
    fn conv_activation_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: ConvGeometry,
        activation: Activation,
    ) -> FloatTensor<Self> {
        activation.forward::<Self>(conv::<Self>(x, weight, None, &geometry))
    }
}

/// `bias` unless it is empty (the convention of [`TuneConvOps::tune_conv`] for "no conv
/// bias").
pub(crate) fn present<B: Backend>(bias: FloatTensor<B>) -> Option<FloatTensor<B>> {
    (bias.shape().num_elements() > 0).then_some(bias)
}

/// The forward of Tune's op on any backend: fold with `scale_weight` (the backend's kernel, or
/// the composed one), one convolution, the activation.
pub(crate) fn tune_forward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bn: BnParams<B>,
    geometry: &ConvGeometry,
    activation: Activation,
    scale_weight: impl FnOnce(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> FloatTensor<B> {
    let folded = fold_primitives_with::<B>(weight, bn, scale_weight);
    activation.forward::<B>(conv::<B>(
        x,
        folded.weight,
        Some(folded.vectors.bias),
        geometry,
    ))
}
