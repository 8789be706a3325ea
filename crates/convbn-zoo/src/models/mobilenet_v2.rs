//! MobileNetV2 (Sandler et al. 2018) with torchvision's layout (`torchvision.models.mobilenet_v2`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use convbn::{ConvBn2d, Result};

use crate::layers::{conv_bn, linear};
use crate::load::Naming;
use crate::models::inverted_residual::{InvertedResidual, mobile_features, mobile_forward};

fn inverted_residual(
    cin: usize,
    cout: usize,
    stride: usize,
    expand: usize,
    device: &Device,
) -> InvertedResidual {
    let hidden = cin * expand;
    InvertedResidual {
        expand: (expand != 1).then(|| conv_bn(cin, hidden, 1, 1, 0, 1, device)),
        depthwise: conv_bn(hidden, hidden, 3, stride, 1, hidden, device),
        project: conv_bn(hidden, cout, 1, 1, 0, 1, device),
        residual: stride == 1 && cin == cout,
    }
}

/// MobileNetV2 for `num_classes` classes (3,504,872 parameters with 1000 classes).
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// 3x3 stride-2 stem, 3 -> 32, ReLU6 (`features.0`).
    pub stem: ConvBn2d,
    /// The 17 inverted residual blocks (`features.1` .. `features.17`).
    pub blocks: Vec<InvertedResidual>,
    /// 1x1 320 -> 1280, ReLU6 (`features.18`).
    pub last: ConvBn2d,
    /// Linear classifier 1280 -> classes (`classifier.1`).
    pub classifier: Linear,
}

/// `(expansion t, channels c, repeats n, first stride s)` of torchvision's MobileNetV2.
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

impl MobileNetV2 {
    /// A randomly initialised MobileNetV2 (all blocks in Eval mode).
    pub fn new(num_classes: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut cin = 32;
        for (t, c, n, s) in SETTINGS {
            for i in 0..n {
                blocks.push(inverted_residual(
                    cin,
                    c,
                    if i == 0 { s } else { 1 },
                    t,
                    device,
                ));
                cin = c;
            }
        }
        Self {
            stem: conv_bn(3, 32, 3, 2, 1, 1, device),
            blocks,
            last: conv_bn(320, 1280, 1, 1, 0, 1, device),
            classifier: linear(1280, num_classes, device),
        }
    }

    /// Logits `[N, classes]` for images `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        mobile_forward(&self.stem, &self.blocks, &self.last, &self.classifier, x)
    }

    /// Feature maps for detection: the outputs at strides 8, 16 and 32 (32, 96 and 320
    /// channels: after blocks 5, 12 and 16), for images `[N, 3, H, W]`.
    pub fn features(&self, x: Tensor<4>) -> Result<[Tensor<4>; 3]> {
        let (_, taps) = mobile_features(&self.stem, &self.blocks, x, &Self::FEATURE_BLOCKS)?;
        let [c3, c4, c5]: [Tensor<4>; 3] = taps.try_into().expect("three taps");
        Ok([c3, c4, c5])
    }

    /// Blocks whose outputs [`features`](Self::features) returns.
    pub const FEATURE_BLOCKS: [usize; 3] = [5, 12, 16];
    /// Channels of the three feature maps.
    pub const FEATURE_CHANNELS: [usize; 3] = [32, 96, 320];

    /// Replace the classifier with a fresh one for `num_classes` classes.
    pub fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.classifier = linear(1280, num_classes, device);
        self
    }

    /// torchvision's parameter names.
    pub fn torchvision_naming() -> Naming {
        Naming {
            block: Some(block_prefixes),
            module: module_prefix,
            transpose_linear: true,
        }
    }
}

fn block_prefixes(path: &str) -> (String, String) {
    let parts: Vec<&str> = path.split('.').collect();
    let pair = |p: String| (format!("{p}.0"), format!("{p}.1"));
    match parts.as_slice() {
        ["stem"] => pair("features.0".into()),
        ["last"] => pair("features.18".into()),
        ["blocks", i, field] => {
            let f = i.parse::<usize>().unwrap_or(0) + 1;
            // Expansion ratio 1 (block 0) has no expand layer: indices shift down by one.
            let e = usize::from(*i != "0");
            match *field {
                "expand" => pair(format!("features.{f}.conv.0")),
                "depthwise" => pair(format!("features.{f}.conv.{e}")),
                _ => (
                    format!("features.{f}.conv.{}", e + 1),
                    format!("features.{f}.conv.{}", e + 2),
                ),
            }
        }
        _ => (path.to_string(), path.to_string()),
    }
}

fn module_prefix(path: &str) -> String {
    match path {
        "classifier" => "classifier.1".into(),
        other => other.to_string(),
    }
}
