//! The rank-dispatched convolution primitives every mode and the fused op share: forward,
//! the input and weight gradients (a GEMM over im2col for 2-d), and per-channel sums.

use burn::backend::Backend;
use burn::backend::TensorMetadata;
use burn::backend::tensor::FloatTensor;
use burn::tensor::Shape;

use crate::geometry::ConvGeometry;

/// `conv(x, weight) + bias` for inputs of rank 3, 4 or 5 on any backend.
pub(crate) fn conv<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: Option<FloatTensor<B>>,
    geometry: &ConvGeometry,
) -> FloatTensor<B> {
    match geometry.spatial() {
        1 => B::conv1d(x, weight, bias, geometry.options()),
        2 => B::conv2d(x, weight, bias, geometry.options()),
        3 => B::conv3d(x, weight, bias, geometry.options()),
        n => unreachable!("ConvGeometry with {n} spatial dimensions is rejected at construction"),
    }
}

/// Gradient of `conv(x, weight)` with respect to `x`, given the output gradient.
pub(crate) fn conv_x_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    geometry: &ConvGeometry,
) -> FloatTensor<B> {
    match geometry.spatial() {
        1 => B::conv1d_x_backward(x, weight, grad, geometry.options()),
        2 => B::conv2d_x_backward(x, weight, grad, geometry.options()),
        3 => B::conv3d_x_backward(x, weight, grad, geometry.options()),
        n => unreachable!("ConvGeometry with {n} spatial dimensions is rejected at construction"),
    }
}

/// [`conv_x_backward`] knowing only the shape of `x`, which is all the input gradient depends
/// on: `x` is stood in for by a broadcast zero (a stride-0 view, no copy), so callers need not
/// keep it alive.
pub(crate) fn conv_x_backward_from_shape<B: Backend>(
    x_shape: Shape,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    geometry: &ConvGeometry,
) -> FloatTensor<B> {
    let rank = x_shape.num_dims();
    let zero = B::float_zeros(
        Shape::from(vec![1; rank]),
        &weight.device(),
        weight.dtype().into(),
    );
    let stand_in = B::float_expand(zero, x_shape);
    conv_x_backward::<B>(stand_in, weight, grad, geometry)
}

/// Gradient of `conv(x, weight)` with respect to `weight`, given the output gradient.
///
/// 2-d convolutions without groups or dilation use [`conv2d_weight_backward_gemm`]; the rest
/// the backend's own weight-gradient kernel.
pub(crate) fn conv_weight_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    geometry: &ConvGeometry,
) -> FloatTensor<B> {
    if geometry.spatial() == 2 && geometry.groups == 1 && geometry.dilation == [1, 1] {
        return conv2d_weight_backward_gemm::<B>(x, weight.shape(), grad, geometry);
    }
    match geometry.spatial() {
        1 => B::conv1d_weight_backward(x, weight, grad, geometry.options()),
        2 => B::conv2d_weight_backward(x, weight, grad, geometry.options()),
        3 => B::conv3d_weight_backward(x, weight, grad, geometry.options()),
        n => unreachable!("ConvGeometry with {n} spatial dimensions is rejected at construction"),
    }
}

/// `dW = sum_n G_n · cols(X_n)^T` as matrix products, `cols` the im2col of the (zero-padded)
/// input (`[C_in*kh*kw, oh*ow]` per image).
///
/// Composed of backend operations: the default of backends without their own kernel (the CPU
/// backend runs `ops/gemm_conv.rs` instead, and this only for the dtypes it does not take).
/// burn's default weight gradient is a convolution of the transposed input with the output
/// gradient as kernel, which ran at 8-50 GFLOP/s on the CPU backend against 100-180 for the
/// forward convolution (ResNet-50 shapes); this runs at matrix-product speed. Two layouts, by which is larger of `K = C_in*kh*kw` and `L = oh*ow`:
/// - `K <= 2L` (early, large feature maps): one product per image, `[N, C_out, L] x
///   [N, L, K]`, summed over `N`; 1x1 convolutions with stride 1 need no im2col at all;
/// - `K > 2L` (late layers, small maps and many channels): the per-image products would be
///   thin (inner size `L`, 49 at 7x7) and their `[N, C_out, K]` results large, so `G` and the
///   columns are laid out once as `[C_out, N*L]` and `[N*L, K]` for a single product.
fn conv2d_weight_backward_gemm<B: Backend>(
    x: FloatTensor<B>,
    weight_shape: Shape,
    grad: FloatTensor<B>,
    geometry: &ConvGeometry,
) -> FloatTensor<B> {
    let [n, c_in, _, _] = x.shape().dims::<4>();
    let [c_out, _, kh, kw] = weight_shape.dims::<4>();
    let [_, _, oh, ow] = grad.shape().dims::<4>();
    let (k, l) = (c_in * kh * kw, oh * ow);
    let padded = geometry.padding.iter().any(|&(a, b)| a + b > 0);
    let x = if padded {
        B::float_pad(
            x,
            &[(0, 0), (0, 0), geometry.padding[0], geometry.padding[1]],
            burn::tensor::ops::PadMode::Constant(0.0),
        )
    } else {
        x
    };
    // The input as `[N, C_in, oh, ow, kh, kw]` (a view): for a 1x1 kernel, the (strided)
    // pixels themselves.
    let blocks = if kh == 1 && kw == 1 {
        let [_, _, h, w] = x.shape().dims::<4>();
        let x = if geometry.stride == [1, 1] {
            x
        } else {
            let slices = [
                burn::tensor::Slice::from(0..n),
                burn::tensor::Slice::from(0..c_in),
                burn::tensor::Slice::new(0, Some(h as isize), geometry.stride[0] as isize),
                burn::tensor::Slice::new(0, Some(w as isize), geometry.stride[1] as isize),
            ];
            B::float_slice(x, &slices)
        };
        B::float_reshape(x, [n, c_in, oh, ow, 1, 1].into())
    } else {
        let blocks = B::float_unfold(x, 2, kh, geometry.stride[0]);
        B::float_unfold(blocks, 3, kw, geometry.stride[1])
    };
    if k > 2 * l {
        // [N, oh, ow, C_in, kh, kw] -> [N*L, K]; G [N, C_out, L] -> [C_out, N*L].
        let rows = B::float_reshape(
            B::float_permute(blocks, &[0, 2, 3, 1, 4, 5]),
            [n * l, k].into(),
        );
        let grad = B::float_reshape(grad, [n, c_out, l].into());
        let grad = B::float_reshape(B::float_permute(grad, &[1, 0, 2]), [c_out, n * l].into());
        return B::float_reshape(B::float_matmul(grad, rows), weight_shape);
    }
    // [N, C_in, oh, ow, kh, kw] -> [N, C_in, kh, kw, oh, ow] -> [N, K, L]
    let cols = B::float_reshape(
        B::float_permute(blocks, &[0, 1, 4, 5, 2, 3]),
        [n, k, l].into(),
    );
    let grad = B::float_reshape(grad, [n, c_out, l].into());
    let per_image = B::float_matmul(grad, B::float_swap_dims(cols, 1, 2));
    let summed = B::float_sum_dim(per_image, 0);
    B::float_reshape(summed, weight_shape)
}

/// Sum of a `[N, C, ...]` tensor over every axis but the channel axis: shape `[C]`.
///
/// This is the gradient of a per-channel bias added to that tensor.
pub(crate) fn sum_per_channel<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let shape = t.shape();
    let channels = shape[1];
    let t = B::float_swap_dims(t, 0, 1);
    let t = B::float_reshape(t, [channels, shape.num_elements() / channels].into());
    B::float_reshape(B::float_sum_dim(t, 1), [channels].into())
}
