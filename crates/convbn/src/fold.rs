//! The one BatchNorm-into-convolution fold, used by Deploy (once) and Tune (every forward and
//! again in backward).
//!
//! With `s = gamma / sqrt(var + eps)` (`gamma = 1` when BN is not affine):
//!
//! ```text
//! W' = W * s            (s broadcast over the output-channel axis)
//! b' = (b - mean) * s + beta   (b = 0 without conv bias, beta = 0 when not affine)
//! ```
//!
//! so that `conv(X, W') + b' == BN_eval(conv(X, W) + b)` exactly in real arithmetic.

use burn::backend::TensorMetadata;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch};
use burn::tensor::Tensor;

/// The folded parameters and the per-channel intermediates the Tune backward needs.
#[derive(Debug, Clone)]
pub(crate) struct Folded<B: Backend> {
    /// `W' = W * s`.
    pub weight: FloatTensor<B>,
    /// `b'`, `s` and the intermediates.
    pub vectors: FoldVectors<B>,
}

/// The per-channel vectors of the fold.
#[derive(Debug, Clone)]
pub(crate) struct FoldVectors<B: Backend> {
    /// `b' = (b - mean) * s + beta`.
    pub bias: FloatTensor<B>,
    /// `s = gamma * inv_std`.
    pub scale: FloatTensor<B>,
    /// `1 / sqrt(var + eps)`.
    pub inv_std: FloatTensor<B>,
    /// `b - mean` (the conv bias is zero when absent).
    pub centered_bias: FloatTensor<B>,
}

/// The BN parameters of one block as backend primitives (`[C]` vectors).
#[derive(Debug, Clone)]
pub(crate) struct BnParams<B: Backend> {
    pub bias: Option<FloatTensor<B>>,
    pub gamma: Option<FloatTensor<B>>,
    pub beta: Option<FloatTensor<B>>,
    pub mean: FloatTensor<B>,
    pub var: FloatTensor<B>,
    pub eps: f64,
}

/// `(s, 1 / sqrt(var + eps))` with `s = gamma / sqrt(var + eps)` (`gamma = 1` when absent).
fn scale_primitives<B: Backend>(
    gamma: Option<FloatTensor<B>>,
    var: FloatTensor<B>,
    eps: f64,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let inv_std = B::float_recip(B::float_sqrt(B::float_add_scalar(var, eps.into())));
    let scale = match gamma {
        Some(gamma) => B::float_mul(gamma, inv_std.clone()),
        None => inv_std.clone(),
    };
    (scale, inv_std)
}

/// The fold's per-channel scale `s = gamma / sqrt(var + eps)` on tensors of any backend.
pub(crate) fn scale(gamma: Option<Tensor<1>>, var: Tensor<1>, eps: f64) -> Tensor<1> {
    let (scale, _) =
        scale_primitives::<Dispatch>(gamma.map(Tensor::into_dispatch), var.into_dispatch(), eps);
    Tensor::from_dispatch(scale)
}

/// `W * s` with `s` broadcast over the output-channel axis, composed of backend operations
/// (differentiable on autodiff backends).
pub(crate) fn scale_weight_composed<B: Backend>(
    weight: FloatTensor<B>,
    scale: FloatTensor<B>,
) -> FloatTensor<B> {
    let rank = weight.shape().num_dims();
    B::float_mul(weight, per_channel::<B>(scale, rank, 0))
}

/// Fold BN into the convolution weight and bias, on any backend (differentiable when `B` is).
pub(crate) fn fold_primitives<B: Backend>(weight: FloatTensor<B>, bn: BnParams<B>) -> Folded<B> {
    fold_primitives_with::<B>(weight, bn, scale_weight_composed::<B>)
}

/// [`fold_primitives`] with the weight scaling `W' = W * s` done by `scale_weight` (a
/// backend's fused kernel, see [`crate::ops::kernels`]).
pub(crate) fn fold_primitives_with<B: Backend>(
    weight: FloatTensor<B>,
    bn: BnParams<B>,
    scale_weight: impl FnOnce(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> Folded<B> {
    let vectors = fold_vectors::<B>(bn);
    Folded {
        weight: scale_weight(weight, vectors.scale.clone()),
        vectors,
    }
}

/// The per-channel part of the fold, without `W'`: for backends that apply `s` to the conv
/// output instead of the weight (`conv(X, W') = conv(X, W) * s`, see
/// [`crate::ops::kernels`]).
pub(crate) fn fold_vectors<B: Backend>(bn: BnParams<B>) -> FoldVectors<B> {
    let (scale, inv_std) = scale_primitives::<B>(bn.gamma, bn.var, bn.eps);
    let centered_bias = match bn.bias {
        Some(bias) => B::float_sub(bias, bn.mean),
        None => B::float_neg(bn.mean),
    };
    let shifted = B::float_mul(centered_bias.clone(), scale.clone());
    let bias = match bn.beta {
        Some(beta) => B::float_add(shifted, beta),
        None => shifted,
    };
    FoldVectors {
        bias,
        scale,
        inv_std,
        centered_bias,
    }
}

/// Fold BatchNorm into a convolution, on tensors of any backend.
///
/// Returns `(W', b')` with `W' = W * s`, `b' = (b - mean) * s + beta`, `s = gamma/sqrt(var+eps)`;
/// absent `bias`/`beta` count as zero and absent `gamma` as one. Differentiable: on an autodiff
/// device, gradients flow to every tracked input.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// let device = Device::flex();
/// let w = Tensor::<4>::ones([2, 1, 1, 1], &device);
/// let mean = Tensor::<1>::from_floats([1.0, 2.0], &device);
/// let var = Tensor::<1>::from_floats([3.0, 0.0], &device);
/// let (w2, b2) = convbn::fold(w, None, None, None, mean, var, 1.0);
/// assert_eq!(w2.into_data().to_vec::<f32>().unwrap(), vec![0.5, 1.0]);
/// assert_eq!(b2.into_data().to_vec::<f32>().unwrap(), vec![-0.5, -2.0]);
/// ```
pub fn fold<const R: usize>(
    weight: Tensor<R>,
    bias: Option<Tensor<1>>,
    gamma: Option<Tensor<1>>,
    beta: Option<Tensor<1>>,
    running_mean: Tensor<1>,
    running_var: Tensor<1>,
    eps: f64,
) -> (Tensor<R>, Tensor<1>) {
    let bn = BnParams::<Dispatch> {
        bias: bias.map(Tensor::into_dispatch),
        gamma: gamma.map(Tensor::into_dispatch),
        beta: beta.map(Tensor::into_dispatch),
        mean: running_mean.into_dispatch(),
        var: running_var.into_dispatch(),
        eps,
    };
    let folded = fold_primitives::<Dispatch>(weight.into_dispatch(), bn);
    (
        Tensor::from_dispatch(folded.weight),
        Tensor::from_dispatch(folded.vectors.bias),
    )
}

/// Reshape a per-channel vector `[C]` to broadcast along axis 0 of a tensor of rank `rank`
/// (`[C, 1, 1, ...]`, for weights) or along axis 1 (`[1, C, 1, ...]`, for activations).
pub(crate) fn per_channel<B: Backend>(
    v: FloatTensor<B>,
    rank: usize,
    axis: usize,
) -> FloatTensor<B> {
    let channels = v.shape()[0];
    let mut dims = vec![1; rank];
    dims[axis] = channels;
    B::float_reshape(v, dims.into())
}
