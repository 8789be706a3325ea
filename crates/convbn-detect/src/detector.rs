//! A single-stage, FCOS-style detector (Tian et al. 2019) on the ImageNet-pretrained
//! MobileNetV2: the backbone's ConvBN blocks in any mode (`convbn::set_mode` on the whole
//! detector switches them; the neck and head have no BN), an FPN neck over the stride-8, 16
//! and 32 features, and a head shared by the levels predicting class logits, box distances
//! `(l, t, r, b)` and centerness at every location.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, activation};
use convbn_zoo::{Architecture, MobileNetV2, Model, ResNet};

use crate::{DetectError, Result};

/// Strides of the three levels.
pub const STRIDES: [u32; 3] = [8, 16, 32];

fn conv(cin: usize, cout: usize, k: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(device)
}

/// Feature pyramid (Lin et al. 2017): 1x1 laterals, nearest-neighbour top-down sums, 3x3
/// outputs.
#[derive(Module, Debug)]
pub struct Fpn {
    lateral: Vec<Conv2d>,
    output: Vec<Conv2d>,
}

impl Fpn {
    /// A pyramid of `channels` channels over inputs of `in_channels` (finest first).
    pub fn new(in_channels: &[usize], channels: usize, device: &Device) -> Self {
        Self {
            lateral: in_channels
                .iter()
                .map(|&c| conv(c, channels, 1, device))
                .collect(),
            output: in_channels
                .iter()
                .map(|_| conv(channels, channels, 3, device))
                .collect(),
        }
    }

    /// The pyramid levels, finest first.
    pub fn forward(&self, features: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        let laterals: Vec<Tensor<4>> = features
            .into_iter()
            .zip(&self.lateral)
            .map(|(f, l)| l.forward(f))
            .collect();
        let mut merged: Vec<Tensor<4>> = Vec::with_capacity(laterals.len());
        for lateral in laterals.into_iter().rev() {
            let m = match merged.last() {
                Some(coarser) => {
                    let [_, _, h, w] = lateral.dims();
                    let up = interpolate(
                        coarser.clone(),
                        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
                    );
                    lateral + up
                }
                None => lateral,
            };
            merged.push(m);
        }
        merged.reverse();
        merged
            .into_iter()
            .zip(&self.output)
            .map(|(m, o)| o.forward(m))
            .collect()
    }
}

/// The outputs of one level: `[N, classes, H, W]` logits, `[N, 4, H, W]` distances in
/// pixels, `[N, 1, H, W]` centerness logits.
#[derive(Clone, Debug)]
pub struct LevelOutput {
    /// Class logits.
    pub cls_logits: Tensor<4>,
    /// `(l, t, r, b)` distances from each location, in pixels: `exp(x) * stride` (FCOS), positive.
    pub ltrb: Tensor<4>,
    /// Centerness logits.
    pub centerness: Tensor<4>,
}

/// Bound of the log-distances (`exp(8)` strides: far beyond any image), so a bad step cannot
/// overflow the exponential.
const MAX_LOG_DISTANCE: f64 = 8.0;

/// One tower layer: 3x3 conv, GroupNorm, ReLU (FCOS's head).
#[derive(Module, Debug)]
pub struct TowerLayer {
    conv: Conv2d,
    norm: GroupNorm,
}

impl TowerLayer {
    fn new(channels: usize, device: &Device) -> Self {
        // Groups of 8 channels, as FCOS's 32 groups of 256; one group when that does not divide.
        let groups = if channels.is_multiple_of(8) {
            channels / 8
        } else {
            1
        };
        Self {
            conv: head_conv(channels, channels, device),
            norm: GroupNormConfig::new(groups, channels).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        activation::relu(self.norm.forward(self.conv.forward(x)))
    }
}

/// A 3x3 head convolution initialised as FCOS's: weights N(0, 0.01).
fn head_conv(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        })
        .init(device)
}

/// The head shared by all levels: a classification and a box tower of 3x3 conv + GroupNorm +
/// ReLU, then class logits from the first, distances and centerness from the second.
#[derive(Module, Debug)]
pub struct FcosHead {
    cls_tower: Vec<TowerLayer>,
    box_tower: Vec<TowerLayer>,
    cls_logits: Conv2d,
    bbox_pred: Conv2d,
    centerness: Conv2d,
}

impl FcosHead {
    /// A head with towers of `depth` layers; class logits start at the prior 0.01 (bias
    /// `-log(99)`, as FCOS and RetinaNet), the other biases at 0.
    pub fn new(channels: usize, classes: usize, depth: usize, device: &Device) -> Self {
        let tower = || -> Vec<TowerLayer> {
            (0..depth)
                .map(|_| TowerLayer::new(channels, device))
                .collect()
        };
        let with_bias = |mut c: Conv2d, n: usize, v: f64| {
            c.bias = Some(Param::from_tensor(Tensor::full([n], v, device)));
            c
        };
        Self {
            cls_tower: tower(),
            box_tower: tower(),
            cls_logits: with_bias(
                head_conv(channels, classes, device),
                classes,
                -(99.0f64.ln()),
            ),
            bbox_pred: with_bias(head_conv(channels, 4, device), 4, 0.0),
            centerness: with_bias(head_conv(channels, 1, device), 1, 0.0),
        }
    }

    /// The head on one level of the given stride.
    pub fn forward(&self, p: Tensor<4>, stride: u32) -> LevelOutput {
        let run = |tower: &[TowerLayer], x: Tensor<4>| tower.iter().fold(x, |x, l| l.forward(x));
        let cls = run(&self.cls_tower, p.clone());
        let bx = run(&self.box_tower, p);
        LevelOutput {
            cls_logits: self.cls_logits.forward(cls),
            ltrb: self
                .bbox_pred
                .forward(bx.clone())
                .clamp(-MAX_LOG_DISTANCE, MAX_LOG_DISTANCE)
                .exp()
                * f64::from(stride),
            centerness: self.centerness.forward(bx),
        }
    }
}

/// A pretrained classification network used for its strides-8/16/32 feature maps (its
/// classifier is unused). Variant names do not appear in parameter paths.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per detector; burn's Module derive wants it unboxed
pub enum Backbone {
    /// MobileNetV2 (ImageNet weights from the registries).
    MobileNetV2(MobileNetV2),
    /// ResNet, ResNeXt or Wide-ResNet (weights from a checkpoint file).
    ResNet(ResNet),
}

impl Backbone {
    /// Check that `arch` can be a backbone (MobileNetV2 or a ResNet).
    pub fn check(arch: Architecture) -> Result<()> {
        use Architecture as A;
        match arch {
            A::MobileNetV2
            | A::ResNet18
            | A::ResNet34
            | A::ResNet50
            | A::ResNet101
            | A::ResNeXt50_32x4d
            | A::WideResNet50_2 => Ok(()),
            _ => Err(DetectError::Invalid(format!(
                "{arch} cannot be a detection backbone; use mobilenet_v2 or a ResNet (resnet18, \
                 resnet34, resnet50, resnet101, resnext50_32x4d, wide_resnet50_2)"
            ))),
        }
    }

    /// The zoo model as a backbone, or an error naming the architectures that can be one.
    pub fn from_model(model: Model) -> Result<Self> {
        match model {
            Model::MobileNetV2(m) => Ok(Self::MobileNetV2(m)),
            Model::ResNet(m) => Ok(Self::ResNet(m)),
            _ => Err(DetectError::Invalid(
                "only MobileNetV2 and the ResNets can be detection backbones".into(),
            )),
        }
    }

    /// The feature maps at strides 8, 16 and 32.
    pub fn features(&self, x: Tensor<4>) -> Result<[Tensor<4>; 3]> {
        Ok(match self {
            Self::MobileNetV2(m) => m.features(x)?,
            Self::ResNet(m) => m.features(x)?,
        })
    }

    /// Channels of the three feature maps.
    pub fn feature_channels(&self) -> [usize; 3] {
        match self {
            Self::MobileNetV2(_) => MobileNetV2::FEATURE_CHANNELS,
            Self::ResNet(m) => m.feature_channels(),
        }
    }
}

/// The detector.
#[derive(Module, Debug)]
pub struct Detector {
    /// The backbone.
    pub backbone: Backbone,
    /// The neck.
    pub fpn: Fpn,
    /// The head.
    pub head: FcosHead,
}

impl Detector {
    /// A detector for `classes` classes on `backbone` (e.g. an ImageNet-pretrained one),
    /// with `channels` channels in the neck and head.
    pub fn new(backbone: Backbone, classes: usize, channels: usize, device: &Device) -> Self {
        Self {
            fpn: Fpn::new(&backbone.feature_channels(), channels, device),
            backbone,
            head: FcosHead::new(channels, classes, 2, device),
        }
    }

    /// The outputs of the three levels (strides [`STRIDES`]) for images `[N, 3, H, W]`.
    pub fn forward(&self, images: Tensor<4>) -> Result<Vec<LevelOutput>> {
        let features = self.backbone.features(images)?;
        let levels = self.fpn.forward(features.to_vec());
        Ok(levels
            .into_iter()
            .zip(STRIDES)
            .map(|(p, s)| self.head.forward(p, s))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use convbn::{Mode, set_mode};

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec().unwrap()
    }

    /// Shapes per level; Tune (switched on the whole detector in one line) gives Eval's
    /// outputs; backward reaches the backbone and the head. MobileNetV2 and ResNet-18.
    #[test]
    fn levels_have_their_shapes_and_tune_equals_eval() {
        let device = Device::flex().autodiff();
        for arch in [Architecture::MobileNetV2, Architecture::ResNet18] {
            check_backbone(Model::new(arch, 10, &device), &device);
        }
        let vgg = Model::new(Architecture::Vgg11Bn, 10, &device);
        assert!(Backbone::from_model(vgg).is_err());
        assert!(Backbone::check(Architecture::Vgg11Bn).is_err());
        assert!(Backbone::check(Architecture::ResNet50).is_ok());
    }

    fn check_backbone(model: Model, device: &Device) {
        let device = device.clone();
        let backbone = Backbone::from_model(model).unwrap();
        let mut eval = Detector::new(backbone, 3, 32, &device);
        set_mode(&mut eval, Mode::Eval).unwrap();
        let mut tune = eval.clone();
        set_mode(&mut tune, Mode::Tune).unwrap();
        let x = Tensor::<4>::random([2, 3, 64, 96], Distribution::Normal(0.0, 1.0), &device);
        let (a, b) = (eval.forward(x.clone()).unwrap(), tune.forward(x).unwrap());
        for ((la, lb), s) in a.iter().zip(&b).zip(STRIDES) {
            let s = s as usize;
            assert_eq!(la.cls_logits.dims(), [2, 3, 64 / s, 96 / s]);
            assert_eq!(la.ltrb.dims(), [2, 4, 64 / s, 96 / s]);
            assert_eq!(la.centerness.dims(), [2, 1, 64 / s, 96 / s]);
            let (p, q) = (values(la.ltrb.clone()), values(lb.ltrb.clone()));
            let diff = p
                .iter()
                .zip(&q)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            let scale = p.iter().map(|x| x.abs()).fold(0.0, f32::max).max(1e-3);
            assert!(diff <= 1e-4 * scale, "level {s}: {diff} vs {scale}");
        }
        let loss = b
            .iter()
            .map(|l| l.cls_logits.clone().sum() + l.ltrb.clone().sum())
            .reduce(|x, y| x + y)
            .unwrap();
        let grads = loss.backward();
        assert!(tune.head.cls_logits.weight.val().grad(&grads).is_some());
        let stem = match &tune.backbone {
            Backbone::MobileNetV2(m) => &m.stem,
            Backbone::ResNet(m) => &m.conv1,
        };
        assert!(stem.weight.val().grad(&grads).is_some());
    }
}
