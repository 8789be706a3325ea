//! Learning-rate schedules, evaluated per iteration.

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// How the learning rate changes over the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Schedule {
    /// The base learning rate throughout.
    Constant,
    /// Linear warm-up over `warmup` iterations from `base/warmup` to `base`, then cosine decay
    /// to zero at the last iteration: `base * (1 + cos(pi * t)) / 2`, `t` from 0 to 1.
    Cosine {
        /// Warm-up iterations.
        warmup: usize,
    },
    /// Multiply by `gamma` every `every` epochs: `base * gamma^floor(epoch / every)`.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Decay factor.
        gamma: f64,
    },
}

impl Schedule {
    /// Check the parameters.
    pub fn validate(&self) -> Result<(), TrainError> {
        match *self {
            Schedule::Step { every, gamma } if every == 0 || !(gamma > 0.0 && gamma <= 1.0) => {
                Err(TrainError::Config(format!(
                    "step schedule needs --step-every >= 1 and 0 < --step-gamma <= 1, got {every} and {gamma}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// The learning rate of iteration `step` (from 0) of `total`, in epoch `epoch`.
    pub fn lr(&self, base: f64, step: usize, total: usize, epoch: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Cosine { warmup } => {
                if step < warmup {
                    return base * (step + 1) as f64 / warmup as f64;
                }
                let span = total.saturating_sub(warmup).max(1) as f64;
                let t = ((step - warmup) as f64 / span).min(1.0);
                base * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            Schedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(1)) as i32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_then_decays_to_zero() {
        let s = Schedule::Cosine { warmup: 10 };
        assert!((s.lr(1.0, 0, 110, 0) - 0.1).abs() < 1e-12);
        assert!((s.lr(1.0, 9, 110, 0) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 10, 110, 0) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 60, 110, 0) - 0.5).abs() < 1e-12);
        assert!(s.lr(1.0, 109, 110, 0) < 1e-3);
    }

    #[test]
    fn step_decays_per_epoch_group() {
        let s = Schedule::Step {
            every: 2,
            gamma: 0.1,
        };
        assert_eq!(s.lr(1.0, 0, 10, 1), 1.0);
        assert!((s.lr(1.0, 0, 10, 2) - 0.1).abs() < 1e-12);
        assert!(
            Schedule::Step {
                every: 0,
                gamma: 0.1
            }
            .validate()
            .is_err()
        );
    }
}
