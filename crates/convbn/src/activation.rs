//! The activation that may follow a ConvBN block, fused into Tune mode's op.

use burn::backend::Backend;
use burn::backend::tensor::FloatTensor;
use burn::tensor::Tensor;

/// An element-wise activation applied to a block's output: `A(BN(conv(X, W) + b))`.
///
/// In Tune mode the activation runs inside the fused op ([`ConvBn::forward_activated`]), whose
/// backward takes the activation's mask from its *output* `A(Z)`: that output is the next
/// layer's input, kept anyway, so the block keeps no separate copy of `Z` for the activation.
/// Gradients equal Eval's except where `Z` is exactly at a kink (`Z = 0`, or `Z = 6` for
/// ReLU6), where burn's `clamp` passes the gradient and the output cannot tell.
///
/// [`ConvBn::forward_activated`]: crate::ConvBn::forward_activated
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    /// No activation.
    #[default]
    Identity,
    /// `max(Z, 0)`.
    Relu,
    /// `min(max(Z, 0), 6)` (MobileNet).
    Relu6,
}

impl Activation {
    /// Apply the activation to a tensor of any backend (differentiable on autodiff devices).
    pub fn apply<const R: usize>(self, z: Tensor<R>) -> Tensor<R> {
        match self {
            Activation::Identity => z,
            Activation::Relu => burn::tensor::activation::relu(z),
            Activation::Relu6 => z.clamp(0.0, 6.0),
        }
    }

    /// Apply the activation to a backend primitive.
    pub(crate) fn forward<B: Backend>(self, z: FloatTensor<B>) -> FloatTensor<B> {
        match self {
            Activation::Identity => z,
            Activation::Relu => B::relu(z),
            Activation::Relu6 => B::float_clamp(z, 0.0.into(), 6.0.into()),
        }
    }

    /// `dL/dZ` from `dL/dA` and the activation's output `A = A(Z)`.
    pub(crate) fn backward<B: Backend>(
        self,
        output: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> FloatTensor<B> {
        match self {
            Activation::Identity => grad,
            Activation::Relu => B::relu_backward(output, grad),
            Activation::Relu6 => {
                // Zero where A <= 0, then where 6 - A <= 0.
                let below = B::relu_backward(output.clone(), grad);
                let headroom = B::float_add_scalar(B::float_neg(output), 6.0.into());
                B::relu_backward(headroom, below)
            }
        }
    }
}
