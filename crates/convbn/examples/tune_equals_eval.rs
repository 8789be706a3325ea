//! Tune mode gives Eval mode's outputs and gradients while keeping less memory.
//!
//! Run with `cargo run --release --example tune_equals_eval`.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor, activation::relu};
use convbn::{ConvBn2d, ConvBnConfig, Mode, blocks, set_mode};

/// A tiny backbone: two ConvBN blocks with ReLU.
#[derive(Module, Debug)]
struct Net {
    stem: ConvBn2d,
    body: Vec<ConvBn2d>,
}

impl Net {
    fn forward(&self, x: Tensor<4>) -> convbn::Result<Tensor<4>> {
        let mut x = relu(self.stem.forward(x)?);
        for block in &self.body {
            x = relu(block.forward(x)?);
        }
        Ok(x)
    }
}

fn main() -> convbn::Result<()> {
    let device = Device::flex().autodiff();
    let conv = |cin, cout| {
        ConvBnConfig::new(cin, cout, [3, 3])
            .with_padding(1)
            .init(&device)
    };
    let mut net = Net {
        stem: conv(3, 16)?,
        body: vec![conv(16, 16)?, conv(16, 16)?],
    };
    let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);

    // One Train-mode step moves the running statistics away from their initial values.
    net.forward(x.clone())?;

    let mut grads_of = |mode: Mode| -> convbn::Result<Vec<f32>> {
        set_mode(&mut net, mode)?;
        let grads = net.forward(x.clone())?.sum().backward();
        let g = net
            .stem
            .weight
            .val()
            .grad(&grads)
            .expect("stem weight gradient");
        Ok(g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap())
    };
    let eval = grads_of(Mode::Eval)?;
    let tune = grads_of(Mode::Tune)?;
    let norm = |v: &[f32]| v.iter().map(|a| (a * a) as f64).sum::<f64>().sqrt();
    let diff: Vec<f32> = eval.iter().zip(&tune).map(|(a, b)| a - b).collect();
    println!(
        "stem weight gradient: |eval| = {:.3}, |eval - tune| / |eval| = {:.2e} (float rounding)",
        norm(&eval),
        norm(&diff) / norm(&eval)
    );
    for b in blocks(&net) {
        println!(
            "{:<8} {:<6} weight {:?}",
            b.path,
            b.mode.to_string(),
            b.weight_shape
        );
    }
    Ok(())
}
