//! Which burn device the commands run on (`--device`), and at which float precision.

use anyhow::{Context, Result};
use burn::tensor::{Device, FloatDType};
use convbn::DeviceSpec;

/// The `--device` option every command that computes takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DeviceArgs {
    /// Backend and adapter: cpu (burn's CPU backend, the default), wgpu (best GPU),
    /// wgpu:cpu (a software adapter, e.g. Mesa's lavapipe), wgpu:N, wgpu-vulkan[:ADAPTER],
    /// wgpu-gl[:ADAPTER], cuda[:N]. GPU backends need a build with `--features
    /// convbn-cli/wgpu` or `convbn-cli/cuda`.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: DeviceSpec,
}

/// A `--device`/`--devices` value, with the library's message on error.
pub fn parse_device(s: &str) -> Result<DeviceSpec, String> {
    s.parse()
        .map_err(|e: convbn::device::DeviceError| e.to_string())
}

impl DeviceArgs {
    /// The device to train on (with autodiff), tensors in `precision`. Must run before the
    /// process creates any tensor on the device (burn fixes a device's default dtype at first
    /// use).
    pub fn training_device(&self, precision: Precision) -> Result<Device> {
        start_training(&self.device, precision)
    }

    /// The device to run inference on (no autodiff), in f32.
    pub fn inference_device(&self) -> Result<Device> {
        self.device
            .device(FloatDType::F32)
            .with_context(|| format!("starting device {}", self.device))
    }
}

/// `spec`'s training device (with autodiff), tensors in `precision`.
pub fn start_training(spec: &DeviceSpec, precision: Precision) -> Result<Device> {
    spec.training_device(precision.dtype())
        .with_context(|| format!("starting device {spec}"))
}

/// Float precision of every tensor a command creates.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats (the checkpoints' own precision; fastest).
    #[default]
    F32,
    /// 64-bit floats: checkpoints widened on load. Rounding differences between modes fall
    /// to about 1e-16, which shows that two modes compute the same function.
    F64,
}

impl Precision {
    fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F64 => FloatDType::F64,
        }
    }
}
