//! [`ConvBnReluStack`]: a plain stack of ConvBN+ReLU blocks, the workload of the memory tests,
//! `convbn bench-block` and the examples.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};

use crate::{Activation, ConvBn2d, ConvBnConfig, ConvBnTensors, Mode, Result};

/// `blocks` ConvBN(3x3, padding 1, `channels` -> `channels`)+ReLU layers.
#[derive(Module, Debug)]
pub struct ConvBnReluStack {
    /// The blocks, applied in order.
    pub layers: Vec<ConvBn2d>,
}

impl ConvBnReluStack {
    /// Build `blocks` layers of `channels` channels in `mode`, randomly initialised, with BN
    /// parameters and running statistics drawn away from 1/0 so that folding is not trivial.
    pub fn new(channels: usize, blocks: usize, mode: Mode, device: &Device) -> Result<Self> {
        let config = ConvBnConfig::new(channels, channels, [3, 3])
            .with_padding(1)
            .with_mode(mode);
        let c = [channels];
        let layers = (0..blocks)
            .map(|_| {
                let fresh: ConvBn2d = config.clone().with_mode(Mode::Eval).init(device)?;
                config.init_with(ConvBnTensors {
                    weight: fresh.weight.val(),
                    bias: None,
                    gamma: Some(Tensor::random(c, Distribution::Uniform(0.5, 1.5), device)),
                    beta: Some(Tensor::random(c, Distribution::Normal(0.0, 0.1), device)),
                    running_mean: Tensor::random(c, Distribution::Normal(0.0, 0.1), device),
                    running_var: Tensor::random(c, Distribution::Uniform(0.5, 1.5), device),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    /// Apply every block followed by ReLU.
    pub fn forward(&self, mut x: Tensor<4>) -> Result<Tensor<4>> {
        for layer in &self.layers {
            x = layer.forward_activated(x, Activation::Relu)?;
        }
        Ok(x)
    }
}
