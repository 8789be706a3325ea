//! Which kernel runs a convolution on Flex, and the tensor plumbing around it: 2-d
//! depthwise convolutions walk each channel's plane ([`Depthwise`], f32), other 2-d
//! convolutions are matrix products over an im2col ([`GemmConv`], f32 and f64); everything
//! else (1-d, 3-d, other dtypes) runs burn's kernels.

use burn::backend::Flex;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, Element, Shape, TensorData};
use burn_flex::FlexTensor;

use crate::geometry::ConvGeometry;
use crate::ops::conv::{conv, conv_weight_backward, conv_x_backward_from_shape};
use crate::ops::depthwise::Depthwise;
use crate::ops::gemm_conv::{GemmConv, Real};
use crate::ops::window::Window;

/// The kernel for a 2-d convolution of `x_shape` with `w_shape`.
pub(super) enum Plan {
    Depthwise(Depthwise),
    Gemm(GemmConv),
}

/// Plan a convolution of `x_shape` (`[N, C_in, H, W]`) with `w_shape`, producing `output`
/// pixels (the given gradient's, or `None` for the forward); `None` when Flex's own kernels
/// should run.
pub(super) fn plan(
    x_shape: &Shape,
    w_shape: &Shape,
    output: Option<[usize; 2]>,
    geometry: &ConvGeometry,
    dtype: DType,
) -> Option<Plan> {
    if x_shape.num_dims() != 4 || w_shape.num_dims() != 4 || geometry.spatial() != 2 {
        return None;
    }
    let (batch, in_channels, out_channels) = (x_shape[0], x_shape[1], w_shape[0]);
    let groups = geometry.groups;
    let fits = groups > 0
        && in_channels.is_multiple_of(groups)
        && out_channels.is_multiple_of(groups)
        && w_shape[1] == in_channels / groups
        && batch > 0
        && in_channels > 0
        && out_channels > 0;
    if !fits {
        return None;
    }
    let (input, kernel) = ([x_shape[2], x_shape[3]], [w_shape[2], w_shape[3]]);
    let expected = geometry.output_size(&input, &kernel)?;
    let output = output.unwrap_or([expected[0], expected[1]]);
    let window = Window::new(geometry, input, kernel, output)?;
    if window.output_pixels() == 0 || window.input_pixels() == 0 {
        return None;
    }
    let depthwise = w_shape[1] == 1 && groups == in_channels && out_channels == in_channels;
    match dtype {
        DType::F32 if depthwise => Some(Plan::Depthwise(Depthwise {
            batch,
            channels: in_channels,
            window,
        })),
        DType::F32 | DType::F64 if !depthwise => Some(Plan::Gemm(GemmConv {
            batch,
            in_channels,
            out_channels,
            groups,
            window,
        })),
        _ => None,
    }
}

/// `t` contiguous (copied only when strided or broadcast).
pub(super) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.layout().contiguous_offsets().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// `f` on the contiguous values of `a` and `b` as `T`, its result shaped `shape`; `None` when
/// either is not of type `T`.
fn with_values<T: Real + Element + bytemuck::Pod>(
    a: &FlexTensor,
    b: &FlexTensor,
    shape: Shape,
    f: impl FnOnce(&[T], &[T]) -> Vec<T>,
) -> Option<FlexTensor> {
    let (a, b) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
    Some(FlexTensor::from_data(TensorData::new(f(a, b), shape)))
}

/// `f` in the dtype of `a` and `b` (f32 or f64); `None` for other dtypes.
fn in_dtype(
    a: FlexTensor,
    b: FlexTensor,
    shape: Shape,
    f32_op: impl FnOnce(&[f32], &[f32]) -> Vec<f32>,
    f64_op: impl FnOnce(&[f64], &[f64]) -> Vec<f64>,
) -> Option<FlexTensor> {
    let (a, b) = (contiguous(a), contiguous(b));
    match (a.dtype(), b.dtype()) {
        (DType::F32, DType::F32) => with_values(&a, &b, shape, f32_op),
        (DType::F64, DType::F64) => with_values(&a, &b, shape, f64_op),
        _ => None,
    }
}

/// Which of a convolution's three kernels runs, on which pair: forward on `(x, weight)`, input
/// gradient on `(weight, grad)`, weight gradient on `(x, grad)`.
#[derive(Clone, Copy)]
enum Pass {
    Forward,
    InputGradient,
    WeightGradient,
}

impl GemmConv {
    fn run<T: Real>(&self, pass: Pass, a: &[T], b: &[T]) -> Vec<T> {
        match pass {
            Pass::Forward => self.forward(a, b),
            Pass::InputGradient => self.input_gradient(a, b),
            Pass::WeightGradient => self.weight_gradient(a, b),
        }
    }
}

impl Plan {
    /// Output pixels `[oh, ow]`.
    fn output(&self) -> [usize; 2] {
        match self {
            Plan::Depthwise(d) => d.window.output,
            Plan::Gemm(k) => k.window.output,
        }
    }

    /// `pass` on `a` and `b`, its result shaped `shape`; `None` when their dtypes do not fit.
    fn run(&self, pass: Pass, a: &FlexTensor, b: &FlexTensor, shape: Shape) -> Option<FlexTensor> {
        let (a, b) = (a.clone(), b.clone());
        match *self {
            Plan::Depthwise(d) => in_dtype(
                a,
                b,
                shape,
                |a, b| match pass {
                    Pass::Forward => d.forward(a, b),
                    Pass::InputGradient => d.input_gradient(a, b),
                    Pass::WeightGradient => d.weight_gradient(a, b),
                },
                |_, _| unreachable!("depthwise kernels are planned for f32 only"),
            ),
            Plan::Gemm(k) => in_dtype(
                a,
                b,
                shape,
                |a, b| k.run(pass, a, b),
                |a, b| k.run(pass, a, b),
            ),
        }
    }
}

/// The spatial size `[h, w]` of a `[N, C, H, W]` tensor.
fn spatial(t: &FlexTensor) -> Option<[usize; 2]> {
    let s = t.layout().shape();
    (s.num_dims() == 4).then(|| [s[2], s[3]])
}

/// `conv(x, weight)` (no bias).
pub(super) fn forward(
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    geometry: &ConvGeometry,
) -> FloatTensor<Flex> {
    let (xs, ws) = (x.layout().shape().clone(), weight.layout().shape().clone());
    plan(&xs, &ws, None, geometry, x.dtype())
        .and_then(|p| {
            let [oh, ow] = p.output();
            p.run(
                Pass::Forward,
                &x,
                &weight,
                Shape::from(vec![xs[0], ws[0], oh, ow]),
            )
        })
        .unwrap_or_else(|| conv::<Flex>(x, weight, None, geometry))
}

/// `dL/dX` from the output gradient, knowing only `X`'s shape.
pub(super) fn input_gradient(
    x_shape: Shape,
    weight: FloatTensor<Flex>,
    grad: FloatTensor<Flex>,
    geometry: &ConvGeometry,
) -> FloatTensor<Flex> {
    let w_shape = weight.layout().shape();
    spatial(&grad)
        .and_then(|o| plan(&x_shape, w_shape, Some(o), geometry, grad.dtype()))
        .and_then(|p| p.run(Pass::InputGradient, &weight, &grad, x_shape.clone()))
        .unwrap_or_else(|| conv_x_backward_from_shape::<Flex>(x_shape, weight, grad, geometry))
}

/// `dL/dW` from the input and the output gradient.
pub(super) fn weight_gradient(
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    grad: FloatTensor<Flex>,
    geometry: &ConvGeometry,
) -> FloatTensor<Flex> {
    let w_shape = weight.layout().shape().clone();
    spatial(&grad)
        .and_then(|o| plan(x.layout().shape(), &w_shape, Some(o), geometry, x.dtype()))
        .and_then(|p| p.run(Pass::WeightGradient, &x, &grad, w_shape))
        .unwrap_or_else(|| conv_weight_backward::<Flex>(x, weight, grad, geometry))
}

/// `dL/dW` from the input and the output gradient (f32), and the dot of each output
/// channel's gradient with its weights, `sum_k dW[c, k] W[c, k]` (`[C_out]`, in f64), from
/// one pass ([`GemmConv::thin_weight_gradient`]): 2-d convolutions over few output pixels;
/// `None` for the others.
pub(super) fn weight_gradient_and_dot(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    geometry: &ConvGeometry,
) -> Option<(FlexTensor, Vec<f64>)> {
    let w_shape = weight.layout().shape().clone();
    let output = spatial(grad)?;
    let Plan::Gemm(kernel) = plan(
        x.layout().shape(),
        &w_shape,
        Some(output),
        geometry,
        x.dtype(),
    )?
    else {
        return None;
    };
    if !kernel.is_thin() {
        return None;
    }
    let [x, weight, grad] = [x, weight, grad].map(|t| contiguous(t.clone()));
    let (dw, dots) = kernel.thin_weight_gradient(
        x.as_slice::<f32>()?,
        grad.as_slice::<f32>()?,
        weight.as_slice::<f32>()?,
    )?;
    Some((FlexTensor::from_data(TensorData::new(dw, w_shape)), dots))
}
