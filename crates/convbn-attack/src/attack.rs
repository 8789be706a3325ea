//! FGSM and PGD (Goodfellow et al. 2015; Madry et al. 2018) through a frozen model.
//!
//! The model's parameters are frozen ([`Module::no_grad`](burn::module::Module::no_grad)):
//! backward computes the input gradient only, which Tune mode's fused op does from X and the
//! recomputed `W'` alone. Each step: forward on `(x - mean) / std`, cross-entropy against the
//! label to move away from (untargeted: ascend) or the target to reach (targeted: descend), a
//! step of `alpha` along the norm's steepest direction, projection onto the `eps`-ball around
//! the clean image and clipping to `[0, 1]`.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use convbn::measure::Meter;
use convbn_zoo::Model;
use serde::{Deserialize, Serialize};

use crate::AttackError;
use crate::norm::Norm;

/// The attack algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// One step of size `eps`.
    Fgsm,
    /// `steps` steps of size `alpha` from a random start in the ball, projected each time.
    Pgd,
}

impl std::str::FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fgsm" => Ok(Method::Fgsm),
            "pgd" => Ok(Method::Pgd),
            _ => Err(format!("unknown method '{s}'; use fgsm or pgd")),
        }
    }
}

/// An attack's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackConfig {
    /// FGSM or PGD.
    pub method: Method,
    /// The threat model.
    pub norm: Norm,
    /// Radius of the ball (pixel values are in `[0, 1]`).
    pub eps: f64,
    /// PGD step size.
    pub alpha: f64,
    /// PGD steps.
    pub steps: usize,
    /// Reach this class instead of leaving the clean prediction.
    pub target: Option<usize>,
    /// Start PGD at a random point of the ball.
    pub random_start: bool,
    /// Seed of the random start.
    pub seed: u64,
}

impl AttackConfig {
    /// Check the ranges for a model with `classes` outputs.
    pub fn validate(&self, classes: usize) -> Result<(), AttackError> {
        let bad = |m: String| Err(AttackError::Config(m));
        let max_eps = match self.norm {
            Norm::Linf => 1.0,
            Norm::L2 => 1e3,
        };
        if !(self.eps > 0.0 && self.eps <= max_eps) {
            return bad(format!(
                "--eps {} is out of range for {:?}: use 0 < eps <= {max_eps} (pixels are in [0, 1])",
                self.eps, self.norm
            ));
        }
        if self.method == Method::Pgd && !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return bad(format!("--alpha must be positive, got {}", self.alpha));
        }
        if self.method == Method::Pgd && self.steps == 0 {
            return bad("--steps must be at least 1".into());
        }
        if let Some(t) = self.target.filter(|&t| t >= classes) {
            return bad(format!(
                "target class {t} does not exist: the model has {classes} classes (0..{})",
                classes - 1
            ));
        }
        Ok(())
    }
}

/// Cost of one attack step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackStepCost {
    /// Wall-clock milliseconds of forward, backward and update.
    pub ms: f64,
    /// Peak heap above the pre-step level (counting allocator; 0 without it).
    pub peak_bytes: usize,
    /// Cross-entropy at the step's input.
    pub loss: f64,
}

/// What an attack produced.
pub struct Outcome {
    /// The adversarial image, `[1, 3, H, W]` in `[0, 1]`.
    pub adversarial: Tensor<4>,
    /// `adversarial - clean`.
    pub perturbation: Tensor<4>,
    /// Input gradient of the first step (flattened), at the device's float precision widened
    /// to f64 (so that f64 runs can be compared below f32 rounding).
    pub first_gradient: Vec<f64>,
    /// Per-step costs.
    pub steps: Vec<AttackStepCost>,
}

/// Attack the plain-device image `clean` (`[1, 3, H, W]`, values in `[0, 1]`) through
/// `model` (on the autodiff `device`, parameters frozen). `label` is the class to move away
/// from when untargeted.
pub fn attack(
    model: &Model,
    clean: &Tensor<4>,
    normalization: ([f32; 3], [f32; 3]),
    label: usize,
    config: &AttackConfig,
    device: &Device,
) -> Result<Outcome, AttackError> {
    let (mean, std) = normalization;
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let (class, ascend) = match config.target {
        Some(t) => (t, false),
        None => (label, true),
    };
    let y = Tensor::<1, Int>::from_data(TensorData::new(vec![class as i64], [1]), device);
    let (steps, size) = match config.method {
        Method::Fgsm => (1, config.eps),
        Method::Pgd => (config.steps, config.alpha),
    };
    let mut x = if config.method == Method::Pgd && config.random_start {
        clean.device().seed(config.seed);
        config.norm.random_start(clean, config.eps)
    } else {
        clean.clone()
    };
    let mut costs = Vec::with_capacity(steps);
    let mut first_gradient = Vec::new();
    for k in 0..steps {
        let meter = Meter::start_on(&clean.device());
        let xg = Tensor::<4>::from_inner(x.clone()).require_grad();
        let logits = model.forward(convbn_zoo::image::normalize(xg.clone(), mean, std))?;
        let loss = loss_fn.forward(logits, y.clone());
        let loss_value = loss.clone().into_scalar::<f64>();
        let grads = loss.backward();
        let g = xg.grad(&grads).ok_or_else(|| {
            AttackError::Config("the model gave no gradient for its input".into())
        })?;
        drop(grads);
        if k == 0 {
            first_gradient = g
                .clone()
                .into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .unwrap_or_default();
        }
        let step = config.norm.direction(g) * if ascend { size } else { -size };
        x = config.norm.project(x + step, clean, config.eps);
        costs.push(AttackStepCost {
            ms: meter.elapsed_ms(),
            peak_bytes: meter.peak_bytes(),
            loss: loss_value,
        });
    }
    Ok(Outcome {
        perturbation: x.clone() - clean.clone(),
        adversarial: x,
        first_gradient,
        steps: costs,
    })
}
