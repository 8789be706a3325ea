//! Optimizers: SGD with momentum (PyTorch's semantics: no dampening, L2 weight decay added to
//! the gradient) and AdamW (decoupled weight decay), from burn-optim.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent with momentum.
    Sgd,
    /// Adam with decoupled weight decay.
    AdamW,
}

/// An optimizer and its hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Base learning rate (the schedule scales it).
    pub lr: f64,
    /// SGD momentum (ignored by AdamW).
    pub momentum: f64,
    /// Weight decay: L2 penalty for SGD, decoupled decay for AdamW. Applied to every
    /// trainable parameter, BN's gamma and beta included, as in the paper's setups.
    pub weight_decay: f64,
}

impl OptimizerConfig {
    /// Check the ranges.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(TrainError::Config(format!(
                "--lr must be a positive number, got {}",
                self.lr
            )));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(TrainError::Config(format!(
                "--momentum must be in [0, 1), got {}",
                self.momentum
            )));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(TrainError::Config(format!(
                "--weight-decay must be >= 0, got {}",
                self.weight_decay
            )));
        }
        Ok(())
    }

    /// A fresh optimizer (no state yet).
    pub fn init(&self) -> ModuleOptimizer {
        let decay = (self.weight_decay > 0.0).then_some(WeightDecayConfig {
            penalty: self.weight_decay as f32,
        });
        match self.kind {
            OptimizerKind::Sgd => SgdConfig::new()
                .with_momentum((self.momentum > 0.0).then_some(MomentumConfig {
                    momentum: self.momentum,
                    dampening: 0.0,
                    nesterov: false,
                }))
                .with_weight_decay(decay)
                .init(),
            OptimizerKind::AdamW => AdamWConfig::new()
                .with_weight_decay(self.weight_decay as f32)
                .init(),
        }
    }
}
