//! The architectures by name, as one [`Model`] type for tools that pick a model at run time.

use std::str::FromStr;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use convbn_onnx::OnnxModel;

use crate::ZooError;
use crate::load::Naming;
use crate::models::efficientnet_lite::EfficientNetLite;
use crate::models::mobilenet_v2::MobileNetV2;
use crate::models::regnet::RegNet;
use crate::models::resnet::{ResNet, ResNetSpec};
use crate::models::vgg::Vgg;

/// Every architecture of the zoo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// ResNet-18.
    ResNet18,
    /// ResNet-34.
    ResNet34,
    /// ResNet-50.
    ResNet50,
    /// ResNet-101.
    ResNet101,
    /// ResNeXt-50 32x4d.
    ResNeXt50_32x4d,
    /// Wide-ResNet-50-2.
    WideResNet50_2,
    /// MobileNetV2.
    MobileNetV2,
    /// VGG-11 with BN.
    Vgg11Bn,
    /// VGG-16 with BN.
    Vgg16Bn,
    /// RegNetX-400MF.
    RegNetX400mf,
    /// EfficientNet-Lite0.
    EfficientNetLite0,
}

impl Architecture {
    /// All architectures.
    pub const ALL: [Architecture; 11] = [
        Self::ResNet18,
        Self::ResNet34,
        Self::ResNet50,
        Self::ResNet101,
        Self::ResNeXt50_32x4d,
        Self::WideResNet50_2,
        Self::MobileNetV2,
        Self::Vgg11Bn,
        Self::Vgg16Bn,
        Self::RegNetX400mf,
        Self::EfficientNetLite0,
    ];

    /// torchvision-style name (`resnet50`, `mobilenet_v2`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::ResNet18 => "resnet18",
            Self::ResNet34 => "resnet34",
            Self::ResNet50 => "resnet50",
            Self::ResNet101 => "resnet101",
            Self::ResNeXt50_32x4d => "resnext50_32x4d",
            Self::WideResNet50_2 => "wide_resnet50_2",
            Self::MobileNetV2 => "mobilenet_v2",
            Self::Vgg11Bn => "vgg11_bn",
            Self::Vgg16Bn => "vgg16_bn",
            Self::RegNetX400mf => "regnet_x_400mf",
            Self::EfficientNetLite0 => "efficientnet_lite0",
        }
    }

    /// The asset holding ImageNet weights for this architecture, if the project has one.
    pub fn pretrained_asset(self) -> Option<&'static str> {
        match self {
            Self::MobileNetV2 => Some("mobilenet_v2"),
            Self::EfficientNetLite0 => Some("efficientnet_lite0"),
            _ => None,
        }
    }

    /// Per-channel `(mean, std)` the pretrained weights expect on `[0, 1]` RGB input.
    pub fn normalization(self) -> ([f32; 3], [f32; 3]) {
        match self {
            // TF-Lite models take (x*255 - 127) / 128.
            Self::EfficientNetLite0 => ([127.0 / 255.0; 3], [128.0 / 255.0; 3]),
            _ => crate::imagenet::NORMALIZATION,
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Architecture {
    type Err = ZooError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|a| a.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|a| a.name()).collect();
                ZooError::Unknown(format!("unknown model '{s}'; known: {}", names.join(", ")))
            })
    }
}

/// Any zoo model. Enum variant names do not appear in parameter paths.
#[derive(Module, Debug)]
pub enum Model {
    /// ResNet, ResNeXt, Wide-ResNet.
    ResNet(ResNet),
    /// MobileNetV2.
    MobileNetV2(MobileNetV2),
    /// VGG-BN.
    Vgg(Vgg),
    /// RegNetX.
    RegNet(RegNet),
    /// EfficientNet-Lite.
    EfficientNetLite(EfficientNetLite),
    /// An imported ONNX CNN (see [`ModelSpec::Onnx`](crate::ModelSpec::Onnx)); parameter
    /// paths are `layers.<i>...`.
    Onnx(OnnxModel),
}

impl Model {
    /// A randomly initialised model with every ConvBN block in Eval mode.
    pub fn new(arch: Architecture, num_classes: usize, device: &Device) -> Self {
        use Architecture as A;
        let resnet = |spec| Model::ResNet(ResNet::new(spec, num_classes, device));
        match arch {
            A::ResNet18 => resnet(ResNetSpec::RESNET18),
            A::ResNet34 => resnet(ResNetSpec::RESNET34),
            A::ResNet50 => resnet(ResNetSpec::RESNET50),
            A::ResNet101 => resnet(ResNetSpec::RESNET101),
            A::ResNeXt50_32x4d => resnet(ResNetSpec::RESNEXT50_32X4D),
            A::WideResNet50_2 => resnet(ResNetSpec::WIDE_RESNET50_2),
            A::MobileNetV2 => Model::MobileNetV2(MobileNetV2::new(num_classes, device)),
            A::Vgg11Bn => Model::Vgg(Vgg::vgg11_bn(num_classes, device)),
            A::Vgg16Bn => Model::Vgg(Vgg::vgg16_bn(num_classes, device)),
            A::RegNetX400mf => Model::RegNet(RegNet::x_400mf(num_classes, device)),
            A::EfficientNetLite0 => {
                Model::EfficientNetLite(EfficientNetLite::lite0(num_classes, device))
            }
        }
    }

    /// Logits `[N, classes]` for images `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> convbn::Result<Tensor<2>> {
        match self {
            Model::ResNet(m) => m.forward(x),
            Model::MobileNetV2(m) => m.forward(x),
            Model::Vgg(m) => m.forward(x),
            Model::RegNet(m) => m.forward(x),
            Model::EfficientNetLite(m) => m.forward(x),
            Model::Onnx(m) => m.logits(x).map_err(|e| match e {
                convbn_onnx::OnnxError::Block { source, .. } => source,
                other => convbn::ConvBnError::Graph(other.to_string()),
            }),
        }
    }

    /// Replace the classifier with a fresh one for `num_classes` classes (transfer learning).
    /// Fails only for an ONNX model whose logits do not come from a Linear layer.
    pub fn with_num_classes(self, num_classes: usize, device: &Device) -> Result<Self, ZooError> {
        Ok(match self {
            Model::ResNet(m) => Model::ResNet(m.with_num_classes(num_classes, device)),
            Model::MobileNetV2(m) => Model::MobileNetV2(m.with_num_classes(num_classes, device)),
            Model::Vgg(m) => Model::Vgg(m.with_num_classes(num_classes, device)),
            Model::RegNet(m) => Model::RegNet(m.with_num_classes(num_classes, device)),
            Model::EfficientNetLite(m) => {
                Model::EfficientNetLite(m.with_num_classes(num_classes, device))
            }
            Model::Onnx(m) => Model::Onnx(m.with_num_classes(num_classes, device)?),
        })
    }

    /// How the reference PyTorch implementation names this model's parameters.
    pub fn pytorch_naming(&self) -> Naming {
        match self {
            Model::ResNet(_) => ResNet::torchvision_naming(),
            Model::MobileNetV2(_) => MobileNetV2::torchvision_naming(),
            Model::Vgg(m) => m.torchvision_naming(),
            Model::RegNet(_) => RegNet::torchvision_naming(),
            Model::EfficientNetLite(_) => EfficientNetLite::reference_naming(),
            // An ONNX model has no PyTorch module tree of ours: its files use burn paths.
            Model::Onnx(_) => Naming::burn(),
        }
    }
}
