//! The inverted residual block shared by MobileNetV2 and EfficientNet-Lite (MBConv without
//! squeeze-excitation): optional 1x1 expansion, depthwise convolution, 1x1 linear projection.

use burn::module::Module;
use burn::tensor::Tensor;
use convbn::{Activation, ConvBn2d, Result};

use burn::nn::Linear;

use crate::layers::global_avg_pool;

/// `x + project(relu6(depthwise(relu6(expand(x)))))` (no skip when the shape changes).
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// 1x1 expansion with ReLU6 (absent when the expansion ratio is 1).
    pub expand: Option<ConvBn2d>,
    /// kxk depthwise convolution with ReLU6.
    pub depthwise: ConvBn2d,
    /// 1x1 projection, no activation.
    pub project: ConvBn2d,
    /// Whether the input is added to the output (stride 1, same channels).
    pub residual: bool,
}

impl InvertedResidual {
    /// Apply the block.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let mut y = x.clone();
        if let Some(expand) = &self.expand {
            y = expand.forward_activated(y, Activation::Relu6)?;
        }
        let y = self.depthwise.forward_activated(y, Activation::Relu6)?;
        let y = self.project.forward(y)?;
        Ok(if self.residual { x + y } else { y })
    }
}

/// The forward pass shared by MobileNetV2 and EfficientNet-Lite: ReLU6 stem, inverted
/// residual blocks, ReLU6 1x1 head, global average pool, linear classifier.
pub(crate) fn mobile_forward(
    stem: &ConvBn2d,
    blocks: &[InvertedResidual],
    head: &ConvBn2d,
    classifier: &Linear,
    x: Tensor<4>,
) -> Result<Tensor<2>> {
    let (x, _) = mobile_features(stem, blocks, x, &[])?;
    let x = head.forward_activated(x, Activation::Relu6)?;
    Ok(classifier.forward(global_avg_pool(x)))
}

/// The stem and the blocks: the last block's output, and the outputs of the blocks at the
/// indices `taps` (in order), for detection necks.
pub(crate) fn mobile_features(
    stem: &ConvBn2d,
    blocks: &[InvertedResidual],
    x: Tensor<4>,
    taps: &[usize],
) -> Result<(Tensor<4>, Vec<Tensor<4>>)> {
    let mut x = stem.forward_activated(x, Activation::Relu6)?;
    let mut tapped = Vec::with_capacity(taps.len());
    for (i, block) in blocks.iter().enumerate() {
        x = block.forward(x)?;
        if taps.contains(&i) {
            tapped.push(x.clone());
        }
    }
    Ok((x, tapped))
}
