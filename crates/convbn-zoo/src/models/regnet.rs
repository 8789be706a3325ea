//! RegNetX-400MF with torchvision's layout (`torchvision.models.regnet_x_400mf`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use convbn::{Activation, ConvBn2d, Result};

use crate::layers::{conv_bn, global_avg_pool, linear};
use crate::load::Naming;

/// A residual bottleneck block (`f.a`, `f.b`, `f.c`, optional `proj`).
#[derive(Module, Debug)]
pub struct ResBottleneck {
    /// Shortcut projection when the shape changes.
    pub proj: Option<ConvBn2d>,
    /// 1x1, ReLU.
    pub a: ConvBn2d,
    /// 3x3 group convolution (stride), ReLU.
    pub b: ConvBn2d,
    /// 1x1, no activation.
    pub c: ConvBn2d,
}

impl ResBottleneck {
    fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let shortcut = match &self.proj {
            Some(p) => p.forward(x.clone())?,
            None => x.clone(),
        };
        let y = self.a.forward_activated(x, Activation::Relu)?;
        let y = self.b.forward_activated(y, Activation::Relu)?;
        Ok(Activation::Relu.apply(self.c.forward(y)? + shortcut))
    }
}

/// RegNetX-400MF: stage widths 32, 64, 160, 400, depths 1, 2, 7, 12, group width 16 (the
/// values torchvision derives from depth 22, w0 24, wa 24.48, wm 2.54).
#[derive(Module, Debug)]
pub struct RegNet {
    /// 3x3 stride-2 stem, 3 -> 32 (`stem`).
    pub stem: ConvBn2d,
    /// Stages of blocks (`trunk_output.blockS.blockS-I`).
    pub stages: Vec<Vec<ResBottleneck>>,
    /// Linear classifier (`fc`).
    pub fc: Linear,
}

const WIDTHS: [usize; 4] = [32, 64, 160, 400];
const DEPTHS: [usize; 4] = [1, 2, 7, 12];
const GROUP_WIDTH: usize = 16;

impl RegNet {
    /// A randomly initialised RegNetX-400MF (5,495,976 parameters with 1000 classes).
    pub fn x_400mf(num_classes: usize, device: &Device) -> Self {
        let mut cin = 32;
        let mut stages = Vec::new();
        for (w, d) in WIDTHS.into_iter().zip(DEPTHS) {
            let blocks = (0..d)
                .map(|i| {
                    let stride = if i == 0 { 2 } else { 1 };
                    let block = ResBottleneck {
                        proj: (cin != w || stride != 1)
                            .then(|| conv_bn(cin, w, 1, stride, 0, 1, device)),
                        a: conv_bn(cin, w, 1, 1, 0, 1, device),
                        b: conv_bn(w, w, 3, stride, 1, w / GROUP_WIDTH, device),
                        c: conv_bn(w, w, 1, 1, 0, 1, device),
                    };
                    cin = w;
                    block
                })
                .collect();
            stages.push(blocks);
        }
        Self {
            stem: conv_bn(3, 32, 3, 2, 1, 1, device),
            stages,
            fc: linear(400, num_classes, device),
        }
    }

    /// Logits `[N, classes]` for images `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        let mut x = self.stem.forward_activated(x, Activation::Relu)?;
        for stage in &self.stages {
            for block in stage {
                x = block.forward(x)?;
            }
        }
        Ok(self.fc.forward(global_avg_pool(x)))
    }

    /// Replace the classifier with a fresh one for `num_classes` classes.
    pub fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.fc = linear(400, num_classes, device);
        self
    }

    /// torchvision's parameter names.
    pub fn torchvision_naming() -> Naming {
        Naming {
            block: Some(block_prefixes),
            module: |p| p.to_string(),
            transpose_linear: true,
        }
    }
}

fn block_prefixes(path: &str) -> (String, String) {
    let pair = |p: String| (format!("{p}.0"), format!("{p}.1"));
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["stages", s, i, layer] => {
            let s = s.parse::<usize>().unwrap_or(0) + 1;
            let base = format!("trunk_output.block{s}.block{s}-{i}");
            match *layer {
                "proj" => pair(format!("{base}.proj")),
                l => pair(format!("{base}.f.{l}")),
            }
        }
        _ => pair(path.to_string()),
    }
}
