//! The activation that may follow a ConvBN block, fused into Tune mode's op.

use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{Backend, TensorMetadata, get_or_init_device_settings};

/// An element-wise activation applied to a block's output: `A(BN(conv(X, W) + b))`.
///
/// In Tune and Deploy mode the activation runs inside the block's conv node
/// ([`ConvBn::forward_activated`]); elsewhere ([`apply`](Self::apply), in [`crate::ops`]) it is a node of its
/// own. Either way its backward takes the mask from the *output* `A(Z)`: that output is the
/// next layer's input, kept anyway, so no separate copy of `Z` is kept for the activation.
/// Gradients are zero where `A(Z)` is at a bound (`Z <= 0`, and `Z >= 6` for ReLU6), as for
/// burn's `relu`; burn's `clamp` would pass the gradient at exactly `Z = 0` or `Z = 6`.
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
    /// Apply the activation to a backend primitive.
    pub(crate) fn forward<B: Backend>(self, z: FloatTensor<B>) -> FloatTensor<B> {
        match self {
            Activation::Identity => z,
            Activation::Relu => B::relu(z),
            Activation::Relu6 => B::float_clamp(z, 0.0.into(), 6.0.into()),
        }
    }

    /// Where the activation passes gradients, from its output `A`: one byte per element, for
    /// when the output itself is not kept by anyone else (frozen parameters).
    pub(crate) fn mask<B: Backend>(self, output: FloatTensor<B>) -> Option<BoolTensor<B>> {
        let dtype = get_or_init_device_settings::<B>(&output.device()).bool_dtype;
        match self {
            Activation::Identity => None,
            Activation::Relu => Some(B::float_greater_elem(output, 0.0.into(), dtype)),
            Activation::Relu6 => {
                let above = B::float_greater_elem(output.clone(), 0.0.into(), dtype);
                let below = B::float_lower_elem(output, 6.0.into(), dtype);
                Some(B::bool_and(above, below))
            }
        }
    }

    /// `dL/dZ` from `dL/dA` and the [`mask`](Self::mask) of the output.
    pub(crate) fn backward_masked<B: Backend>(
        mask: BoolTensor<B>,
        grad: FloatTensor<B>,
    ) -> FloatTensor<B> {
        B::float_mask_fill(grad, B::bool_not(mask), 0.0.into())
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
