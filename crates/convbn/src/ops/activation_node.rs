//! An activation as a graph node of its own (Train and Eval mode, and any layer outside a
//! block), through the fused op's [`TuneConvOps::fused_activation`].

use burn::backend::Backend;
use burn::backend::Dispatch;
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::tensor::Tensor;

use crate::activation::Activation;
use crate::ops::TuneConvOps;

/// What a fused activation's backward keeps to know where it passes gradients.
#[derive(Debug, Clone)]
pub(crate) enum Kept<B: Backend> {
    /// The output `A`: free while the next layer keeps it as its input (training).
    Output(FloatTensor<B>),
    /// A one-byte mask: with frozen parameters the next conv keeps no input, so keeping `A`
    /// would cost four bytes per element.
    Mask(BoolTensor<B>),
}

impl Activation {
    /// Apply the activation to a tensor of any backend (differentiable on autodiff devices).
    ///
    /// On autodiff devices the backward keeps the output `A(z)`, not `z`: the output is the
    /// next layer's input, kept anyway, so the activation keeps nothing of its own (burn's
    /// `relu` keeps its input instead; PyTorch reaches the same with in-place ReLU).
    pub fn apply<const R: usize>(self, z: Tensor<R>) -> Tensor<R> {
        Tensor::from_dispatch(<Dispatch as TuneConvOps>::fused_activation(
            z.into_dispatch(),
            self,
        ))
    }
}
