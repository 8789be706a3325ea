//! Which burn device the commands run on, and at which float precision.

use anyhow::{Context, Result};
use burn::tensor::{Device, DeviceConfig, FloatDType};

/// The default training device: burn's pure-Rust CPU backend with autodiff.
///
/// Builds with the `wgpu` or `cuda` feature may pass their own device to the library; the
/// commands use the CPU backend so that their measurements are comparable across machines.
pub fn training_device() -> Device {
    Device::flex().autodiff()
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

/// [`training_device`] whose tensors default to `precision`. Must run before the process
/// creates any tensor on the CPU device (burn fixes a device's default dtype at first use).
pub fn training_device_at(precision: Precision) -> Result<Device> {
    let mut plain = Device::flex();
    if precision == Precision::F64 {
        plain
            .configure(DeviceConfig {
                float_dtype: Some(FloatDType::F64),
                ..Default::default()
            })
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .context("switching the CPU device to f64")?;
    }
    Ok(plain.autodiff())
}
