//! `--devices`: training data-parallel with burn's Learner, shared by `finetune` and
//! `detect train`. The run directory then holds `<out>/<mode>/model.safetensors` (the trained
//! weights), `summary.json` and burn's logs under `learner/`; see docs/backends.md for what
//! this path does not keep (mid-run resume, per-iteration memory, lock-step modes, charts).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use convbn::{DeviceSpec, Mode};
use convbn_train::learner::Parallelism;
use convbn_zoo::load::{Naming, to_checkpoint};
use serde::Serialize;

use crate::commands::report::write;
use crate::commands::train_args::RunArgs;
use crate::device::{DeviceArgs, Precision, parse_device, start_training};

/// The `--devices` option.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DevicesArgs {
    /// Train data-parallel with burn's Learner on these devices (comma-separated, e.g.
    /// `cuda:0,cuda:1`; the same device twice runs two workers on it). --batch-size is the
    /// global batch, split evenly. Writes `<out>/<mode>/model.safetensors`, `summary.json` and
    /// burn's logs (`learner/`); no --resume or --stop-after on this path (docs/backends.md).
    #[arg(long, value_delimiter = ',', value_parser = parse_device)]
    pub devices: Vec<DeviceSpec>,
    /// With --devices on CUDA GPUs: burn's distributed data parallel (each GPU keeps its own
    /// copy, gradients all-reduced with NCCL) instead of its multi-device strategy (gradients
    /// summed on the first device). CUDA only in burn 0.22.
    #[arg(long, requires = "devices")]
    pub ddp: bool,
}

/// Where a data-parallel run of one mode writes, checked and claimed.
pub struct Plan {
    /// The devices, started.
    pub devices: Vec<Device>,
    /// How they share a step.
    pub parallelism: Parallelism,
    /// `<out>/<mode>`.
    pub dir: PathBuf,
    /// `<out>/<mode>/model.safetensors`.
    pub weights: PathBuf,
}

impl DevicesArgs {
    /// Whether `--devices` was given.
    pub fn is_set(&self) -> bool {
        !self.devices.is_empty()
    }

    /// Check the options that this path refuses, and start the devices. `modes` must hold one
    /// mode (one model per Learner).
    pub fn plan(
        &self,
        device: &DeviceArgs,
        run: &RunArgs,
        out: &Path,
        modes: &[Mode],
    ) -> Result<Plan> {
        if device.device != DeviceSpec::Cpu {
            bail!("give either --device or --devices, not both");
        }
        if run.resume || run.stop_after.is_some() {
            bail!(
                "--resume and --stop-after need the lock-step trainer (no --devices): burn's \
                 Learner has no mid-run stop and resume"
            );
        }
        let [mode] = modes else {
            bail!("--devices trains one mode at a time (one model per Learner)");
        };
        if self.ddp
            && let Some(other) = self
                .devices
                .iter()
                .find(|d| !matches!(d, DeviceSpec::Cuda { .. }))
        {
            bail!("--ddp runs on CUDA devices only (burn 0.22's DDP is NCCL's), not on {other}");
        }
        let dir = out.join(mode.to_string());
        let weights = dir.join("model.safetensors");
        if weights.exists() && !run.overwrite {
            bail!(
                "{} holds the result of an earlier run; pass --overwrite to replace it or \
                 choose another --out",
                dir.display()
            );
        }
        let devices = self
            .devices
            .iter()
            .map(|spec| start_training(spec, Precision::F32))
            .collect::<Result<Vec<_>>>()?;
        eprintln!(
            "{mode} mode with burn's Learner on {} device(s): {}",
            devices.len(),
            self.names().join(", ")
        );
        Ok(Plan {
            devices,
            parallelism: if self.ddp {
                Parallelism::Ddp
            } else {
                Parallelism::Multi
            },
            dir,
            weights,
        })
    }

    /// The devices' names.
    pub fn names(&self) -> Vec<String> {
        self.devices.iter().map(|d| d.to_string()).collect()
    }
}

impl Plan {
    /// Write the trained model's weights (with `naming`'s keys) and the run's summary,
    /// atomically.
    pub fn finish<M: Module, S: Serialize>(
        &self,
        model: &M,
        naming: &Naming,
        summary: &S,
    ) -> Result<()> {
        let weights = to_checkpoint(model, naming)
            .to_safetensors_bytes(&[], None)
            .map_err(anyhow::Error::msg)
            .context("encoding the trained weights")?;
        write(&self.weights, &weights)?;
        write(
            &self.dir.join("summary.json"),
            &serde_json::to_vec_pretty(summary)?,
        )
    }
}
