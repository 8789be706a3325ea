//! EfficientNet-Lite0 in the layout of PyPI `efficientnet-lite-pytorch==0.1.0` (keys
//! `_conv_stem`, `_bn0`, `_blocks.I._expand_conv`/`_bn0`/`_depthwise_conv`/`_bn1`/
//! `_project_conv`/`_bn2`, `_conv_head`, `_bn1`, `_fc`): no squeeze-excitation, ReLU6, BN eps
//! 1e-3, TensorFlow "SAME" padding.
//!
//! "SAME" padding is static, computed for even input sizes as the reference implementation does
//! for 224x224 (stride-2 layers pad `(k-2)/2` before and `k/2` after): inputs whose sides are
//! multiples of 32 give exactly TensorFlow's result.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use convbn::{ConvBn2d, Result};

use crate::layers::{config, linear};
use crate::load::Naming;
use crate::models::inverted_residual::{InvertedResidual, mobile_forward};

/// EfficientNet-Lite0.
#[derive(Module, Debug)]
pub struct EfficientNetLite {
    /// 3x3 stride-2 stem, 3 -> 32, ReLU6.
    pub stem: ConvBn2d,
    /// The 16 MBConv blocks (inverted residuals without squeeze-excitation; `expand` is
    /// `_expand_conv`/`_bn0`, `depthwise` `_depthwise_conv`/`_bn1`, `project`
    /// `_project_conv`/`_bn2`).
    pub blocks: Vec<InvertedResidual>,
    /// 1x1 320 -> 1280, ReLU6.
    pub head: ConvBn2d,
    /// Linear classifier (`_fc`).
    pub fc: Linear,
}

/// `(kernel, stride, expansion, in, out, repeats)` of Lite0.
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
];

const EPS: f64 = 1e-3;
const MOMENTUM: f64 = 0.01;

fn same_conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> ConvBn2d {
    let (before, after) = if stride == 1 {
        ((k - 1) / 2, (k - 1) / 2)
    } else {
        ((k - 2) / 2, k / 2)
    };
    config(cin, cout, k, stride, groups)
        .with_padding_pairs(vec![(before, after); 2])
        .with_eps(EPS)
        .with_momentum(MOMENTUM)
        .init(device)
        .expect("valid EfficientNet layer")
}

impl EfficientNetLite {
    /// A randomly initialised EfficientNet-Lite0 (blocks in Eval mode).
    pub fn lite0(num_classes: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        for (k, s, e, cin, cout, n) in STAGES {
            for i in 0..n {
                let (cin, stride) = if i == 0 { (cin, s) } else { (cout, 1) };
                let hidden = cin * e;
                blocks.push(InvertedResidual {
                    expand: (e != 1).then(|| same_conv(cin, hidden, 1, 1, 1, device)),
                    depthwise: same_conv(hidden, hidden, k, stride, hidden, device),
                    project: same_conv(hidden, cout, 1, 1, 1, device),
                    residual: stride == 1 && cin == cout,
                });
            }
        }
        Self {
            stem: same_conv(3, 32, 3, 2, 1, device),
            blocks,
            head: same_conv(320, 1280, 1, 1, 1, device),
            fc: linear(1280, num_classes, device),
        }
    }

    /// Logits `[N, classes]` for images `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        mobile_forward(&self.stem, &self.blocks, &self.head, &self.fc, x)
    }

    /// Replace the classifier with a fresh one for `num_classes` classes.
    pub fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.fc = linear(1280, num_classes, device);
        self
    }

    /// The parameter names of `efficientnet-lite-pytorch`.
    pub fn reference_naming() -> Naming {
        Naming {
            block: Some(block_prefixes),
            module: module_prefix,
            transpose_linear: true,
        }
    }
}

fn block_prefixes(path: &str) -> (String, String) {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["stem"] => ("_conv_stem".into(), "_bn0".into()),
        ["head"] => ("_conv_head".into(), "_bn1".into()),
        ["blocks", i, layer] => {
            let (conv, bn) = match *layer {
                "expand" => ("_expand_conv", "_bn0"),
                "depthwise" => ("_depthwise_conv", "_bn1"),
                _ => ("_project_conv", "_bn2"),
            };
            (format!("_blocks.{i}.{conv}"), format!("_blocks.{i}.{bn}"))
        }
        _ => (path.to_string(), path.to_string()),
    }
}

fn module_prefix(path: &str) -> String {
    match path {
        "fc" => "_fc".into(),
        other => other.to_string(),
    }
}
