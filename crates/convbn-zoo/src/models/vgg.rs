//! VGG with batch normalisation (`torchvision.models.vgg11_bn`, `vgg16_bn`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use convbn::{Activation, ConvBn2d, Result};

use crate::layers::{config, linear, max_pool_2x2};
use crate::load::Naming;

/// Channels of each 3x3 convolution; `0` is a 2x2 max pool.
const VGG11: &[usize] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
const VGG16: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

/// VGG-BN (VGG-16-BN: 138,365,992 parameters with 1000 classes).
#[derive(Module, Debug)]
pub struct Vgg {
    /// The 3x3 ConvBN+ReLU layers, in order (with conv bias, as torchvision).
    pub convs: Vec<ConvBn2d>,
    /// After which convolutions a max pool follows.
    #[module(skip)]
    pub pool_after: Vec<bool>,
    /// 512*7*7 -> 4096 (`classifier.0`).
    pub fc1: Linear,
    /// 4096 -> 4096 (`classifier.3`).
    pub fc2: Linear,
    /// 4096 -> classes (`classifier.6`).
    pub fc3: Linear,
}

impl Vgg {
    /// VGG-11-BN.
    pub fn vgg11_bn(num_classes: usize, device: &Device) -> Self {
        Self::new(VGG11, num_classes, device)
    }

    /// VGG-16-BN.
    pub fn vgg16_bn(num_classes: usize, device: &Device) -> Self {
        Self::new(VGG16, num_classes, device)
    }

    fn new(layout: &[usize], num_classes: usize, device: &Device) -> Self {
        let (mut convs, mut pool_after) = (Vec::new(), Vec::new());
        let mut cin = 3;
        for &c in layout {
            if c == 0 {
                if let Some(last) = pool_after.last_mut() {
                    *last = true;
                }
            } else {
                let block = config(cin, c, 3, 1, 1)
                    .with_padding(1)
                    .with_bias(true)
                    .init(device)
                    .expect("valid VGG layer");
                convs.push(block);
                pool_after.push(false);
                cin = c;
            }
        }
        Self {
            convs,
            pool_after,
            fc1: linear(512 * 7 * 7, 4096, device),
            fc2: linear(4096, 4096, device),
            fc3: linear(4096, num_classes, device),
        }
    }

    /// Logits `[N, classes]` for images `[N, 3, H, W]` (H, W multiples of 32, at least 32).
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        let mut x = x;
        for (conv, pool) in self.convs.iter().zip(&self.pool_after) {
            x = conv.forward_activated(x, Activation::Relu)?;
            if *pool {
                x = max_pool_2x2(x);
            }
        }
        let x = burn::tensor::module::adaptive_avg_pool2d(x, [7, 7]);
        let [n, c, h, w] = x.dims();
        let x = x.reshape([n, c * h * w]);
        let x = Activation::Relu.apply(self.fc1.forward(x));
        let x = Activation::Relu.apply(self.fc2.forward(x));
        Ok(self.fc3.forward(x))
    }

    /// Replace the last classifier layer with a fresh one for `num_classes` classes.
    pub fn with_num_classes(mut self, num_classes: usize, device: &Device) -> Self {
        self.fc3 = linear(4096, num_classes, device);
        self
    }

    /// torchvision's parameter names (`features.I`, `classifier.0/3/6`) for this layout.
    pub fn torchvision_naming(&self) -> Naming {
        // Conv j sits at 3*j plus the number of pools before it in `features`.
        let table = match self.convs.len() {
            8 => vgg_index::<0>,
            _ => vgg_index::<1>,
        };
        Naming {
            block: Some(table),
            module: module_prefix,
            transpose_linear: true,
        }
    }
}

fn vgg_index<const LAYOUT: usize>(path: &str) -> (String, String) {
    let layout = if LAYOUT == 0 { VGG11 } else { VGG16 };
    let j: usize = path
        .strip_prefix("convs.")
        .and_then(|j| j.parse().ok())
        .unwrap_or(0);
    let mut index = 0;
    let mut conv = 0;
    for &c in layout {
        if c == 0 {
            index += 1;
        } else {
            if conv == j {
                break;
            }
            conv += 1;
            index += 3;
        }
    }
    (
        format!("features.{index}"),
        format!("features.{}", index + 1),
    )
}

fn module_prefix(path: &str) -> String {
    match path {
        "fc1" => "classifier.0".into(),
        "fc2" => "classifier.3".into(),
        "fc3" => "classifier.6".into(),
        other => other.to_string(),
    }
}
