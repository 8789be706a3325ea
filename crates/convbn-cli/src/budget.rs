//! Memory a run will need, estimated before it allocates, so that a size no machine can hold
//! is refused with a message instead of aborting the process on a failed allocation.
//!
//! Sizes are multiplied with checked arithmetic (an overflow is itself a refusal). Whole
//! networks are estimated by a *probe*: training steps at batch 1 and 2 on a small input,
//! measured with the counting allocator; what one image adds is scaled by the batch and the
//! pixel count (activation memory grows linearly in both), the rest is counted once.

use anyhow::{Result, bail};

use crate::commands::modes::human_bytes;

/// The product of `factors` in bytes, `None` on overflow.
pub fn product(factors: &[usize]) -> Option<u64> {
    factors
        .iter()
        .try_fold(1u64, |a, &f| a.checked_mul(u64::try_from(f).ok()?))
}

/// A `/proc` field in kB, as bytes.
#[cfg(target_os = "linux")]
fn proc_kb(file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// Memory this process can still use: the machine's available memory, lowered by an
/// address-space limit (`ulimit -v`) or a cgroup limit when one is set. `None` if unknown.
pub fn available() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let mut limit = proc_kb("/proc/meminfo", "MemAvailable:");
        let mut lower = |v: Option<u64>| {
            if let Some(v) = v {
                limit = Some(limit.map_or(v, |l| l.min(v)));
            }
        };
        // SAFETY: getrlimit only writes the struct it is given.
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) } == 0
            && rl.rlim_cur != libc::RLIM_INFINITY
        {
            let used = proc_kb("/proc/self/status", "VmSize:").unwrap_or(0);
            lower(Some(rl.rlim_cur.saturating_sub(used)));
        }
        let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let cgroup_used = std::fs::read_to_string("/sys/fs/cgroup/memory.current")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        lower(cgroup.map(|c| c.saturating_sub(cgroup_used)));
        limit
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Refuse `what` when it needs more memory than is available (`needed` is `None` when the
/// sizes overflowed while estimating).
pub fn ensure_fits(what: &str, needed: Option<u64>) -> Result<()> {
    let Some(needed) = needed else {
        bail!("{what}: the sizes overflow any machine's memory; choose smaller sizes");
    };
    if let Some(free) = available()
        && needed > free
    {
        bail!(
            "{what} needs about {} of memory, but {} is available; choose a smaller size or \
             batch",
            human_bytes(usize::try_from(needed).unwrap_or(usize::MAX)),
            human_bytes(usize::try_from(free).unwrap_or(usize::MAX))
        );
    }
    Ok(())
}

/// Input side of a probe step.
pub const PROBE_SIDE: usize = 64;

/// What probe steps at batch 1 and 2 and [`PROBE_SIDE`] allocated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probe {
    /// The model's parameters.
    pub model_bytes: u64,
    /// The batch-1 step's peak above the model: activations kept for backward, the
    /// gradients, and buffers the size of a weight (e.g. a large classifier's).
    pub step_bytes: u64,
    /// What one more image adds to the step's peak (the batch-2 step's minus the batch-1
    /// step's): the part that grows with the batch and the pixel count.
    pub image_bytes: u64,
}

impl Probe {
    /// Build a model with `build` and run a training step on it with `step` at batch 1 and
    /// at batch 2 (random inputs of [`PROBE_SIDE`]), measuring them with the counting
    /// allocator.
    pub fn measure<M>(
        device: &burn::tensor::Device,
        build: impl FnOnce() -> Result<M>,
        step: impl Fn(&M, burn::tensor::Tensor<4>) -> Result<()>,
    ) -> Result<Self> {
        use burn::tensor::{Distribution, Tensor};
        let base = convbn::memory::allocated();
        let model = build()?;
        let built = convbn::memory::allocated();
        let peak_at = |batch: usize| -> Result<u64> {
            convbn::memory::reset_peak();
            let shape = [batch, 3, PROBE_SIDE, PROBE_SIDE];
            step(&model, Tensor::random(shape, Distribution::Default, device))?;
            Ok(convbn::memory::peak().saturating_sub(built) as u64)
        };
        let one = peak_at(1)?;
        let two = peak_at(2)?;
        Ok(Self {
            model_bytes: built.saturating_sub(base) as u64,
            step_bytes: one,
            image_bytes: two.saturating_sub(one),
        })
    }

    /// Refuse `what` when training `models` copies at `batch` x `side` x `side` cannot fit.
    pub fn ensure_training_fits(
        &self,
        what: &str,
        models: usize,
        batch: usize,
        side: usize,
    ) -> Result<()> {
        ensure_fits(
            &format!("{what} at batch {batch}, {side}x{side}"),
            self.training(models, batch, side),
        )
    }

    /// Memory of training `models` copies (modes in lock-step) at `batch` x `side` x `side`:
    /// each copy's parameters with their gradients and two optimizer moments, one image's
    /// step memory scaled by the batch and the pixel count, and the rest of the batch-1 step
    /// (buffers that do not grow with the batch) as measured; the whole batch-1 step is
    /// scaled when one image added nothing measurable, so the estimate stays on the safe
    /// side.
    pub fn training(&self, models: usize, batch: usize, side: usize) -> Option<u64> {
        let pixels = product(&[side, side])?;
        let per_image = if self.image_bytes == 0 {
            self.step_bytes
        } else {
            self.image_bytes.min(self.step_bytes)
        };
        let fixed = self.step_bytes - per_image;
        let per_pixel = per_image.div_ceil(product(&[PROBE_SIDE, PROBE_SIDE])?);
        let activations = per_pixel
            .checked_mul(pixels)?
            .checked_mul(u64::try_from(batch).ok()?)?
            .checked_add(fixed)?;
        self.model_bytes
            .checked_mul(4)?
            .checked_mul(u64::try_from(models).ok()?)?
            .checked_add(activations)
    }
}

/// Refuse `what`, training `models` copies of the model `spec` (a zoo architecture or an
/// ONNX file) at `batch` x `side` x `side`, when it cannot fit (a probe step of the model,
/// scaled; see [`Probe`]).
pub fn ensure_zoo_training_fits(
    what: &str,
    spec: &convbn_zoo::ModelSpec,
    models: usize,
    batch: usize,
    side: usize,
    device: &burn::tensor::Device,
) -> Result<()> {
    let probe = Probe::measure(
        device,
        || {
            let model = match spec {
                convbn_zoo::ModelSpec::Zoo(arch) => convbn_zoo::Model::new(*arch, 10, device),
                onnx => convbn_zoo::pretrained::build(
                    onnx,
                    &convbn_zoo::pretrained::Weights::ImageNet,
                    false,
                    device,
                )?,
            };
            convbn_train::trainer::materialize(&model);
            Ok(model)
        },
        |model, x| {
            let _grads = model.forward(x)?.sum().backward();
            Ok(())
        },
    )?;
    probe.ensure_training_fits(what, models, batch, side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_and_scaling_refuse_overflow() {
        assert_eq!(product(&[2, 3, 4]), Some(24));
        assert_eq!(product(&[1 << 32, 1 << 32]), None);
        let probe = Probe {
            model_bytes: 100,
            step_bytes: 4096,
            image_bytes: 4096,
        };
        assert_eq!(probe.training(2, 2, 128), Some(2 * 400 + 2 * 4 * 4096));
        // A batch-independent part (a weight-sized buffer) is not scaled.
        let probe = Probe {
            model_bytes: 100,
            step_bytes: 4096 + 1000,
            image_bytes: 4096,
        };
        assert_eq!(
            probe.training(2, 2, 128),
            Some(2 * 400 + 2 * 4 * 4096 + 1000)
        );
        assert_eq!(probe.training(1, 1, usize::MAX), None);
        assert!(
            ensure_fits("x", None)
                .unwrap_err()
                .to_string()
                .contains("overflow")
        );
        assert!(ensure_fits("x", Some(u64::MAX)).is_err());
        assert!(ensure_fits("x", Some(1)).is_ok());
    }
}
