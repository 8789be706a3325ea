//! The workload: one training step of a zoo model in one mode (forward, `loss = sum(logits)`,
//! backward, no optimizer), every parameter trainable, as `bench/pytorch_reference.py` does.

use anyhow::{Context, Result};
use burn::tensor::{Device, Distribution, Tensor};
use convbn::flops::count_convolution_flops;
use convbn::measure::{StepCost, measure_step};
use convbn::threads::on_compute_threads;
use convbn::{Mode, set_mode};
use convbn_zoo::{Architecture, Model};

/// One (model, batch, size) workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Architecture.
    pub arch: Architecture,
    /// Images per step.
    pub batch: usize,
    /// Height and width of the (square) input.
    pub size: usize,
}

/// A randomly initialised 1000-class model with every block in `mode`.
///
/// Each mode gets its own model: clones of a burn module share their BN running statistics.
pub fn build(arch: Architecture, mode: Mode, device: &Device) -> Result<Model> {
    let mut model = Model::new(arch, 1000, device);
    set_mode(&mut model, mode).with_context(|| format!("switching {arch} to {mode}"))?;
    Ok(model)
}

/// Run one training step of `model` on a fresh random batch, on the CPU backend's compute
/// threads as training does ([`on_compute_threads`]), and measure it: its cost and its
/// convolutions' operations ([`count_convolution_flops`]).
pub fn step(model: &Model, w: Workload, device: &Device) -> Result<(StepCost, f64)> {
    let x = Tensor::<4>::random(
        [w.batch, 3, w.size, w.size],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let (cost, flops) =
        on_compute_threads(|| count_convolution_flops(|| measure_step(x, |x| model.forward(x))));
    let cost =
        cost.with_context(|| format!("{} step at batch {} size {}", w.arch, w.batch, w.size))?;
    Ok((cost, flops))
}
