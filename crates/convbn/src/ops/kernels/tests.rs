//! The Flex kernels against the composed operations and burn's own kernels.

use burn::backend::Flex;
use burn::tensor::TensorData;
use burn_flex::FlexTensor;

use super::FusedKernels;
use crate::activation::Activation;
use crate::geometry::ConvGeometry;

fn floats(v: &[f32]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v.to_vec(), [2, v.len() / 2]))
}

fn read(t: FlexTensor) -> TensorData {
    t.into_data()
}

/// The Flex kernels agree with the composed backend operations, bounds included.
#[test]
fn flex_mask_kernels_match_the_composed_operations() {
    let out = [-1.0, 0.0, 1e-30, 3.0, 6.0, 5.999, 7.0, f32::NAN];
    let grad = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    for act in [Activation::Relu, Activation::Relu6] {
        let fast = <Flex as FusedKernels>::activation_mask(act, floats(&out)).unwrap();
        let composed = act.mask::<Flex>(floats(&out)).unwrap();
        let (f, c) = (read(fast.clone()), read(composed.clone()));
        assert_eq!(f.as_bytes(), c.as_bytes(), "{act:?} masks");
        let g_fast = <Flex as FusedKernels>::masked_gradient(fast, floats(&grad));
        let g_composed = Activation::backward_masked::<Flex>(composed, floats(&grad));
        assert_eq!(read(g_fast), read(g_composed), "{act:?} gradients");
    }
    assert!(<Flex as FusedKernels>::activation_mask(Activation::Identity, floats(&out)).is_none());
}

fn random(shape: [usize; 4], seed: u64) -> FlexTensor {
    let mut state = seed;
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn max_diff(a: FlexTensor, b: FlexTensor) -> f32 {
    let (a, b) = (a.into_data(), b.into_data());
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (
        a.try_to_vec::<f32>().unwrap(),
        b.try_to_vec::<f32>().unwrap(),
    );
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The direct depthwise forward and gradients equal burn's grouped-convolution ones, over strides,
/// asymmetric padding, dilation and kernels larger than some outputs.
#[test]
fn direct_depthwise_kernels_match_burns() {
    use crate::ops::conv::{conv_weight_backward, conv_x_backward_from_shape};
    use burn::backend::ops::ModuleOps;
    use burn::tensor::{DType, Shape};
    let cases = [
        // (size, kernel, stride, padding (begin, end), dilation)
        (9, 3, 1, (1, 1), 1),
        (8, 3, 2, (0, 1), 1),
        (7, 3, 2, (1, 1), 2),
        (6, 5, 1, (2, 2), 1),
        (5, 3, 3, (2, 0), 1),
        (4, 1, 1, (0, 0), 1),
        (1, 3, 1, (1, 1), 1),
        (2, 3, 2, (1, 1), 1),
    ];
    for (k, &(size, kernel, stride, padding, dilation)) in cases.iter().enumerate() {
        let (n, c) = (2, 3);
        let geometry = ConvGeometry {
            stride: vec![stride; 2],
            padding: vec![padding; 2],
            dilation: vec![dilation; 2],
            groups: c,
        };
        let out = geometry
            .output_size(&[size, size], &[kernel, kernel])
            .unwrap();
        let x = random([n, c, size, size], 3 * k as u64 + 1);
        let w = random([c, 1, kernel, kernel], 3 * k as u64 + 2);
        let g = random([n, c, out[0], out[1]], 3 * k as u64 + 3);
        let shape = Shape::from(vec![n, c, size, size]);
        assert!(
            matches!(
                super::flex_conv::plan(&shape, w.layout().shape(), None, &geometry, DType::F32),
                Some(super::flex_conv::Plan::Depthwise(_))
            ),
            "case {k} takes the direct path"
        );
        let y = <Flex as FusedKernels>::conv_forward(x.clone(), w.clone(), &geometry);
        let y_burn = Flex::conv2d(x.clone(), w.clone(), None, geometry.options());
        assert!(max_diff(y, y_burn) < 1e-5, "case {k}: forward");
        let dw = <Flex as FusedKernels>::conv_weight_gradient(
            x.clone(),
            w.clone(),
            g.clone(),
            &geometry,
        );
        let dw_burn = conv_weight_backward::<Flex>(x, w.clone(), g.clone(), &geometry);
        assert!(max_diff(dw, dw_burn) < 1e-4, "case {k}: weight gradient");
        let dx = <Flex as FusedKernels>::conv_input_gradient(
            shape.clone(),
            w.clone(),
            g.clone(),
            &geometry,
        );
        let dx_burn = conv_x_backward_from_shape::<Flex>(shape, w, g, &geometry);
        assert!(max_diff(dx, dx_burn) < 1e-5, "case {k}: input gradient");
    }
}

/// `t` in `dtype` (f32 or f64).
fn cast(t: FlexTensor, dtype: burn::tensor::DType) -> FlexTensor {
    FlexTensor::from_data(t.into_data().convert_dtype(dtype))
}

/// Largest `|a - b|` over the largest `|b|` (1 when `b` is all zeros).
fn relative_diff(a: FlexTensor, b: FlexTensor) -> f64 {
    let (a, b) = (a.into_data(), b.into_data());
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (
        a.convert::<f64>().try_to_vec::<f64>().unwrap(),
        b.convert::<f64>().try_to_vec::<f64>().unwrap(),
    );
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1.0);
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

/// A 2-d geometry from a test case's stride, padding (begin, end) per axis, dilation and
/// groups.
fn case_geometry(
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
    groups: usize,
) -> ConvGeometry {
    ConvGeometry {
        stride: stride.to_vec(),
        padding: padding.to_vec(),
        dilation: dilation.to_vec(),
        groups,
    }
}

/// The matrix-product convolutions (forward, input and weight gradients) equal burn's own
/// Flex kernels, in f32 and f64, over kernel sizes, strides, symmetric and asymmetric
/// padding, dilation, groups, 1x1 convolutions read in place, and batches split into chunks
/// of several images (small maps) or run on all threads at once (batch 1).
#[test]
fn gemm_convolutions_match_burns() {
    use burn::backend::ops::ModuleOps;
    use burn::tensor::{DType, Shape};
    let cases = [
        // (batch, C_in, C_out, size [h, w], kernel [kh, kw], stride, padding (begin, end) per
        // axis, dilation, groups)
        (2, 3, 4, [9, 9], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
        (3, 4, 6, [8, 7], [3, 3], [2, 2], [(0, 1), (1, 0)], [1, 1], 1),
        (2, 4, 4, [7, 9], [3, 3], [2, 1], [(1, 1), (2, 2)], [2, 1], 2),
        (
            1,
            3,
            8,
            [12, 12],
            [7, 7],
            [2, 2],
            [(3, 3), (3, 3)],
            [1, 1],
            1,
        ),
        (5, 8, 4, [6, 6], [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
        (
            1,
            8,
            16,
            [6, 6],
            [1, 1],
            [1, 1],
            [(0, 0), (0, 0)],
            [1, 1],
            4,
        ),
        (
            4,
            8,
            16,
            [7, 7],
            [1, 1],
            [2, 2],
            [(0, 0), (0, 0)],
            [1, 1],
            1,
        ),
        (
            8,
            16,
            8,
            [3, 3],
            [3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
            4,
        ),
        (2, 2, 3, [5, 6], [5, 3], [3, 1], [(2, 0), (1, 1)], [1, 2], 1),
        (3, 6, 6, [4, 4], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 3),
        (2, 3, 2, [3, 3], [5, 5], [1, 1], [(2, 2), (2, 2)], [1, 1], 1),
        (4, 8, 8, [1, 1], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
        (4, 8, 8, [2, 2], [3, 3], [2, 2], [(1, 1), (1, 1)], [1, 1], 2),
        (
            4,
            8,
            16,
            [1, 1],
            [1, 1],
            [1, 1],
            [(0, 0), (0, 0)],
            [1, 1],
            1,
        ),
    ];
    for (k, &(n, c_in, c_out, size, kernel, stride, padding, dilation, groups)) in
        cases.iter().enumerate()
    {
        let geometry = case_geometry(stride, padding, dilation, groups);
        let out = geometry.output_size(&size, &kernel).unwrap();
        let seed = 5 * k as u64;
        for dtype in [DType::F32, DType::F64] {
            let x = cast(random([n, c_in, size[0], size[1]], seed + 1), dtype);
            let w = cast(
                random([c_out, c_in / groups, kernel[0], kernel[1]], seed + 2),
                dtype,
            );
            let g = cast(random([n, c_out, out[0], out[1]], seed + 3), dtype);
            let bound = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
            let planned = super::flex_conv::plan(
                x.layout().shape(),
                w.layout().shape(),
                None,
                &geometry,
                dtype,
            );
            assert!(
                matches!(planned, Some(super::flex_conv::Plan::Gemm(_))),
                "case {k} runs as matrix products"
            );
            let y = <Flex as FusedKernels>::conv_forward(x.clone(), w.clone(), &geometry);
            let y_burn = Flex::conv2d(x.clone(), w.clone(), None, geometry.options());
            let d = relative_diff(y, y_burn);
            assert!(d < bound, "case {k} {dtype:?}: forward differs by {d:e}");
            let shape = Shape::from(vec![n, c_in, size[0], size[1]]);
            let dx =
                <Flex as FusedKernels>::conv_input_gradient(shape, w.clone(), g.clone(), &geometry);
            let dx_burn =
                Flex::conv2d_x_backward(x.clone(), w.clone(), g.clone(), geometry.options());
            let d = relative_diff(dx, dx_burn);
            assert!(
                d < bound,
                "case {k} {dtype:?}: input gradient differs by {d:e}"
            );
            let dw = <Flex as FusedKernels>::conv_weight_gradient(
                x.clone(),
                w.clone(),
                g.clone(),
                &geometry,
            );
            let dw_burn = Flex::conv2d_weight_backward(x, w, g, geometry.options());
            let d = relative_diff(dw, dw_burn);
            assert!(
                d < bound,
                "case {k} {dtype:?}: weight gradient differs by {d:e}"
            );
        }
    }
}

/// The output-side kernels that fold channel by channel inside their pass (Tune's forward
/// affine, the scaled activation gradient, `d_s` from the weights and the BN gradients)
/// equal the composed operations on the materialised fold vectors: exactly for the
/// element-wise results, to f32 rounding for the sums; with and without gamma, beta and a
/// conv bias, `d_s` from the weights and from the output products.
#[test]
fn flex_fold_kernels_match_the_composed_operations() {
    use super::{
        DScale, Sums, activation_gradient_composed, bn_gradients_composed,
        fold_activation_composed, scale_gradient_composed,
    };
    use crate::fold::{BnParams, fold_vectors};
    use crate::ops::Kept;
    let c = 6;
    let vector = |seed: u64, shift: f32| {
        let v = random([1, 1, 1, c], seed)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        FlexTensor::from_data(TensorData::new(
            v.iter().map(|x| x + shift).collect::<Vec<_>>(),
            [c],
        ))
    };
    let y = random([2, c, 3, 5], 11);
    let grad = random([2, c, 3, 5], 12);
    let weight = random([c, 4, 3, 3], 13);
    let d_weight = random([c, 4, 3, 3], 14);
    for (k, affine, bias) in [
        (0, true, false),
        (1, true, true),
        (2, false, false),
        (3, false, true),
    ] {
        let bn = BnParams::<Flex> {
            bias: bias.then(|| vector(20 + k, 0.0)),
            gamma: affine.then(|| vector(30 + k, 1.0)),
            beta: affine.then(|| vector(40 + k, 0.0)),
            mean: vector(50 + k, 0.0),
            var: vector(60 + k, 1.0),
            eps: 1e-3,
        };
        let Ok(fold) = <Flex as FusedKernels>::output_fold(bn.clone()) else {
            panic!("case {k}: an invertible fold takes the output side");
        };
        let v = fold_vectors::<Flex>(bn.clone());
        for act in [Activation::Identity, Activation::Relu, Activation::Relu6] {
            let fast = <Flex as FusedKernels>::fold_activation(y.clone(), &bn, act);
            let composed = fold_activation_composed::<Flex>(y.clone(), &bn, act);
            assert_eq!(
                read(fast.clone()),
                read(composed),
                "case {k} {act:?} forward"
            );
            let g = <Flex as FusedKernels>::activation_gradient(
                grad.clone(),
                Some(Kept::Output(fast.clone())),
                act,
                Some(&fold),
                Sums::GradientAndOutput,
            );
            let g_composed = activation_gradient_composed::<Flex>(
                grad.clone(),
                Some(Kept::Output(fast)),
                act,
                Some(&bn),
                Sums::Gradient,
            );
            assert_eq!(
                read(g.grad),
                read(g_composed.grad),
                "case {k} {act:?} G * s"
            );
            let (sums, sums_composed) = (g.sums.unwrap(), g_composed.sums.unwrap());
            assert!(
                relative_diff(sums.clone(), sums_composed) < 1e-6,
                "case {k} sum G"
            );
            // d_s from the output products and from the weights, each against the composed
            // BN gradients on the same inputs.
            let products = g.output_products.expect("products from the kept output");
            let d_s =
                <Flex as FusedKernels>::scale_gradient(d_weight.clone(), weight.clone(), &fold);
            let d_s_composed =
                scale_gradient_composed::<Flex>(d_weight.clone(), weight.clone(), &bn);
            assert!(
                relative_diff(d_s.clone(), d_s_composed) < 1e-6,
                "case {k} d_s"
            );
            for from_products in [true, false] {
                let d = || -> DScale<Flex> {
                    if from_products {
                        DScale::OutputProducts(products.clone())
                    } else {
                        DScale::Weights(d_s.clone())
                    }
                };
                let again = d();
                let d = d();
                let fast =
                    <Flex as FusedKernels>::fold_gradients(&fold, Some(d), sums.clone(), bias);
                let composed = bn_gradients_composed::<Flex>(&v, Some(again), sums.clone(), bias);
                let pairs = [
                    (fast.gamma, composed.gamma, "dgamma"),
                    (fast.bias, composed.bias, "db"),
                    (Some(fast.beta), Some(composed.beta), "dbeta"),
                ];
                for (a, b, name) in pairs {
                    assert_eq!(a.is_some(), b.is_some(), "case {k} {name}");
                    if let (Some(a), Some(b)) = (a, b) {
                        assert!(relative_diff(a, b) < 1e-6, "case {k} {act:?} {name}");
                    }
                }
            }
        }
    }
    // A zero scale is not invertible: backward then takes the weight side.
    let zero = BnParams::<Flex> {
        bias: None,
        gamma: Some(FlexTensor::from_data(TensorData::new(vec![0.0f32; c], [c]))),
        beta: None,
        mean: vector(1, 0.0),
        var: vector(2, 1.0),
        eps: 1e-3,
    };
    assert!(<Flex as FusedKernels>::output_fold(zero).is_err());
}

/// The weight gradient with `d_s` from one pass (convolutions over at most 64 output pixels,
/// where the CPU has AVX-512F) equals burn's weight gradient and the composed `d_s` on it:
/// 1x1 convolutions read in place, batches gathered, strides, padding, dilation, groups,
/// rows of the weight that end inside a register and inside a block of 64, and output
/// channels that do not fill a set of four rows. Larger outputs take the product and a
/// separate dot (the same results).
#[test]
fn thin_weight_gradients_match_burns() {
    use super::scale_gradient_composed;
    use crate::fold::BnParams;
    use burn::backend::ops::ModuleOps;
    // (batch, C_in, C_out, size [h, w], kernel, stride, padding per axis, dilation, groups)
    #[rustfmt::skip]
    let cases = [
        (1, 400, 22, [4, 4], [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
        (1, 7, 5, [8, 8], [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
        (3, 130, 9, [3, 3], [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
        (2, 24, 33, [7, 7], [1, 1], [2, 2], [(0, 0), (0, 0)], [1, 1], 1),
        (1, 16, 12, [5, 6], [3, 3], [1, 1], [(1, 1), (2, 0)], [1, 2], 1),
        (2, 32, 24, [4, 4], [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 4),
        (1, 8, 8, [9, 9], [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
    ];
    for (k, &(n, c_in, c_out, size, kernel, stride, padding, dilation, groups)) in
        cases.iter().enumerate()
    {
        let geometry = case_geometry(stride, padding, dilation, groups);
        let out = geometry.output_size(&size, &kernel).unwrap();
        let seed = 7 * k as u64 + 100;
        let x = random([n, c_in, size[0], size[1]], seed);
        let w = random([c_out, c_in / groups, kernel[0], kernel[1]], seed + 1);
        let g = random([n, c_out, out[0], out[1]], seed + 2);
        let vector = |seed: u64, shift: f32| {
            let v = random([1, 1, 1, c_out], seed)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let v: Vec<f32> = v.iter().map(|x| x + shift).collect();
            FlexTensor::from_data(TensorData::new(v, [c_out]))
        };
        let bn = BnParams::<Flex> {
            bias: None,
            gamma: Some(vector(seed + 3, 1.0)),
            beta: Some(vector(seed + 4, 0.0)),
            mean: vector(seed + 5, 0.0),
            var: vector(seed + 6, 1.0),
            eps: 1e-3,
        };
        let Ok(fold) = <Flex as FusedKernels>::output_fold(bn.clone()) else {
            panic!("case {k}: an invertible fold takes the output side");
        };
        let pixels = n * out[0] * out[1];
        let one_pass = super::flex_conv::weight_gradient_and_dot(&x, &w, &g, &geometry);
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        assert_eq!(
            one_pass.is_some(),
            avx512 && pixels <= 64,
            "case {k}: one pass where it applies"
        );
        let (dw, d_s) = <Flex as FusedKernels>::weight_and_scale_gradient(
            x.clone(),
            w.clone(),
            g.clone(),
            &geometry,
            &fold,
        );
        let dw_burn = Flex::conv2d_weight_backward(x, w.clone(), g, geometry.options());
        let d_s_composed = scale_gradient_composed::<Flex>(dw_burn.clone(), w, &bn);
        let d = relative_diff(dw, dw_burn);
        assert!(d < 1e-5, "case {k}: weight gradient differs by {d:e}");
        let d = relative_diff(d_s, d_s_composed);
        assert!(d < 1e-5, "case {k}: d_s differs by {d:e}");
    }
}
