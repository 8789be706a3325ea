//! ResNet, ResNeXt and Wide-ResNet with torchvision's layout (`torchvision.models.resnet*`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use convbn::{Activation, ConvBn2d, Result};

use crate::layers::{conv_bn, global_avg_pool, linear, max_pool_3x3_s2};
use crate::load::Naming;

/// A residual block: two 3x3 convolutions (basic) or 1x1-3x3-1x1 (bottleneck).
#[derive(Module, Debug)]
pub struct Block {
    /// First convolution (`conv1`/`bn1`).
    pub conv1: ConvBn2d,
    /// Second convolution (`conv2`/`bn2`).
    pub conv2: ConvBn2d,
    /// Third convolution of a bottleneck (`conv3`/`bn3`).
    pub conv3: Option<ConvBn2d>,
    /// 1x1 projection of the shortcut when the shape changes (`downsample.0`/`downsample.1`).
    pub downsample: Option<ConvBn2d>,
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let shortcut = match &self.downsample {
            Some(d) => d.forward(x.clone())?,
            None => x.clone(),
        };
        let mut y = self.conv1.forward_activated(x, Activation::Relu)?;
        if let Some(conv3) = &self.conv3 {
            y = self.conv2.forward_activated(y, Activation::Relu)?;
            y = conv3.forward(y)?;
        } else {
            y = self.conv2.forward(y)?;
        }
        Ok(Activation::Relu.apply(y + shortcut))
    }
}

/// Which ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNetSpec {
    /// Blocks per stage.
    pub layers: [usize; 4],
    /// Bottleneck (expansion 4) rather than basic blocks.
    pub bottleneck: bool,
    /// Groups of the 3x3 convolution (ResNeXt).
    pub groups: usize,
    /// Channels per group of a bottleneck at base width 64 (Wide-ResNet: 128).
    pub width_per_group: usize,
}

impl ResNetSpec {
    /// ResNet-18.
    pub const RESNET18: Self = Self::new([2, 2, 2, 2], false, 1, 64);
    /// ResNet-34.
    pub const RESNET34: Self = Self::new([3, 4, 6, 3], false, 1, 64);
    /// ResNet-50 (25,557,032 parameters with 1000 classes).
    pub const RESNET50: Self = Self::new([3, 4, 6, 3], true, 1, 64);
    /// ResNet-101.
    pub const RESNET101: Self = Self::new([3, 4, 23, 3], true, 1, 64);
    /// ResNeXt-50 32x4d.
    pub const RESNEXT50_32X4D: Self = Self::new([3, 4, 6, 3], true, 32, 4);
    /// Wide-ResNet-50-2.
    pub const WIDE_RESNET50_2: Self = Self::new([3, 4, 6, 3], true, 1, 128);

    const fn new(
        layers: [usize; 4],
        bottleneck: bool,
        groups: usize,
        width_per_group: usize,
    ) -> Self {
        Self {
            layers,
            bottleneck,
            groups,
            width_per_group,
        }
    }

    fn expansion(&self) -> usize {
        if self.bottleneck { 4 } else { 1 }
    }
}

/// A ResNet-family classifier.
#[derive(Module, Debug)]
pub struct ResNet {
    /// 7x7 stride-2 stem (`conv1`/`bn1`).
    pub conv1: ConvBn2d,
    /// The four stages (`layer1` .. `layer4`).
    pub layers: Vec<Vec<Block>>,
    /// Linear classifier (`fc`).
    pub fc: Linear,
}

impl ResNet {
    /// A randomly initialised network (blocks in Eval mode).
    pub fn new(spec: ResNetSpec, num_classes: usize, device: &Device) -> Self {
        let e = spec.expansion();
        let mut inplanes = 64;
        let mut layers = Vec::new();
        for (stage, &n) in spec.layers.iter().enumerate() {
            let planes = 64 << stage;
            let mut blocks = Vec::new();
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let downsample = (stride != 1 || inplanes != planes * e)
                    .then(|| conv_bn(inplanes, planes * e, 1, stride, 0, 1, device));
                let block = if spec.bottleneck {
                    let width = planes * spec.width_per_group / 64 * spec.groups;
                    Block {
                        conv1: conv_bn(inplanes, width, 1, 1, 0, 1, device),
                        conv2: conv_bn(width, width, 3, stride, 1, spec.groups, device),
                        conv3: Some(conv_bn(width, planes * e, 1, 1, 0, 1, device)),
                        downsample,
                    }
                } else {
                    Block {
                        conv1: conv_bn(inplanes, planes, 3, stride, 1, 1, device),
                        conv2: conv_bn(planes, planes, 3, 1, 1, 1, device),
                        conv3: None,
                        downsample,
                    }
                };
                blocks.push(block);
                inplanes = planes * e;
            }
            layers.push(blocks);
        }
        Self {
            conv1: conv_bn(3, 64, 7, 2, 3, 1, device),
            layers,
            fc: linear(512 * e, num_classes, device),
        }
    }

    /// Logits `[N, classes]` for images `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        Ok(self.fc.forward(global_avg_pool(self.stages(x, |_, _| {})?)))
    }

    /// The stem and the four stages; `tap(stage, output)` sees each stage's output.
    fn stages(&self, x: Tensor<4>, mut tap: impl FnMut(usize, &Tensor<4>)) -> Result<Tensor<4>> {
        let mut x = max_pool_3x3_s2(self.conv1.forward_activated(x, Activation::Relu)?);
        for (s, stage) in self.layers.iter().enumerate() {
            for block in stage {
                x = block.forward(x)?;
            }
            tap(s, &x);
        }
        Ok(x)
    }

    /// Feature maps for detection: the outputs of `layer2`, `layer3` and `layer4` (strides 8,
    /// 16 and 32), for images `[N, 3, H, W]`.
    pub fn features(&self, x: Tensor<4>) -> Result<[Tensor<4>; 3]> {
        let mut taps = Vec::with_capacity(2);
        let c5 = self.stages(x, |s, t| {
            if s == 1 || s == 2 {
                taps.push(t.clone());
            }
        })?;
        let [c3, c4]: [Tensor<4>; 2] = taps.try_into().expect("two taps");
        Ok([c3, c4, c5])
    }

    /// Channels of the three [`features`](Self::features) maps (128, 256, 512 times the
    /// block expansion for torchvision's ResNets).
    pub fn feature_channels(&self) -> [usize; 3] {
        [1, 2, 3].map(|s| {
            let last = self.layers[s].last().expect("non-empty stage");
            last.conv3.as_ref().unwrap_or(&last.conv2).out_channels()
        })
    }

    /// Replace the classifier with a fresh one for `num_classes` classes.
    pub fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        let [features, _] = self.fc.weight.val().dims();
        self.fc = linear(features, num_classes, device);
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

/// `layers.S.B.convK` -> `layerS+1.B.convK` / `bnK`; `downsample` -> `.0` / `.1`.
fn block_prefixes(path: &str) -> (String, String) {
    let path = module_prefix(path);
    if path == "conv1" {
        return ("conv1".into(), "bn1".into());
    }
    match path.rsplit_once('.') {
        Some((block, "downsample")) => (
            format!("{block}.downsample.0"),
            format!("{block}.downsample.1"),
        ),
        Some((block, conv)) => (
            path.clone(),
            format!("{block}.bn{}", conv.trim_start_matches("conv")),
        ),
        None => (path.clone(), path),
    }
}

fn module_prefix(path: &str) -> String {
    match path.strip_prefix("layers.") {
        Some(rest) => {
            let (stage, tail) = rest.split_once('.').unwrap_or((rest, ""));
            let stage = stage.parse::<usize>().unwrap_or(0) + 1;
            if tail.is_empty() {
                format!("layer{stage}")
            } else {
                format!("layer{stage}.{tail}")
            }
        }
        None => path.to_string(),
    }
}
