//! Small building blocks shared by the architectures.

use burn::nn::{Linear, LinearConfig};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use convbn::{ConvBn2d, ConvBnConfig, Mode};

/// A 2-d ConvBN block with PyTorch's usual options; starts in Eval mode (transfer learning).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_bn(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
    device: &Device,
) -> ConvBn2d {
    config(cin, cout, kernel, stride, groups)
        .with_padding(padding)
        .init(device)
        .expect("architecture constants form valid ConvBN blocks")
}

/// The configuration behind [`conv_bn`], for variations (bias, eps, asymmetric padding).
pub(crate) fn config(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
) -> ConvBnConfig {
    ConvBnConfig::new(cin, cout, [kernel, kernel])
        .with_stride(stride)
        .with_groups(groups)
        .with_mode(Mode::Eval)
}

/// A fully connected layer `cin -> cout` with bias.
pub(crate) fn linear(cin: usize, cout: usize, device: &Device) -> Linear {
    LinearConfig::new(cin, cout).init(device)
}

/// Mean over the spatial dimensions: `[N, C, H, W] -> [N, C]`.
pub(crate) fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}

/// Square max pooling with the given kernel, stride and symmetric padding.
fn max_pool(x: Tensor<4>, kernel: usize, stride: usize, padding: usize) -> Tensor<4> {
    burn::tensor::module::max_pool2d(
        x,
        MaxPoolOptions {
            kernel_size: [kernel; 2],
            stride: [stride; 2],
            padding: [(padding, padding); 2],
            dilation: [1, 1],
            ceil_mode: false,
        },
    )
}

/// 3x3 max pooling with stride 2 and padding 1 (ResNet's stem).
pub(crate) fn max_pool_3x3_s2(x: Tensor<4>) -> Tensor<4> {
    max_pool(x, 3, 2, 1)
}

/// 2x2 max pooling with stride 2 (VGG).
pub(crate) fn max_pool_2x2(x: Tensor<4>) -> Tensor<4> {
    max_pool(x, 2, 2, 0)
}
