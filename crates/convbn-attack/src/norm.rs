//! The threat models: steps and projections for L-inf and L2 balls around the clean image.
//!
//! Images are `[1, 3, H, W]` RGB values in `[0, 1]`; after every step the perturbation is
//! projected onto the ball of radius `eps` and the image clipped to `[0, 1]`. Clipping only
//! moves pixels towards the clean image (which lies in `[0, 1]`), so it never leaves the ball.

use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

/// Which ball bounds the perturbation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// `max |delta| <= eps`; steps follow the gradient's sign.
    Linf,
    /// `||delta||_2 <= eps`; steps follow the normalised gradient.
    L2,
}

impl std::str::FromStr for Norm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "linf" | "inf" | "l-inf" => Ok(Norm::Linf),
            "l2" | "2" => Ok(Norm::L2),
            _ => Err(format!("unknown norm '{s}'; use linf or l2")),
        }
    }
}

impl Norm {
    /// The ascent direction of size 1 in this norm: `sign(g)` or `g / ||g||_2`.
    pub fn direction(self, grad: Tensor<4>) -> Tensor<4> {
        match self {
            Norm::Linf => grad.sign(),
            Norm::L2 => {
                let n = l2(&grad).max(1e-12);
                grad / n
            }
        }
    }

    /// Project `x` onto the ball of radius `eps` around `clean`, then clip to `[0, 1]`.
    pub fn project(self, x: Tensor<4>, clean: &Tensor<4>, eps: f64) -> Tensor<4> {
        let delta = x - clean.clone();
        let delta = match self {
            Norm::Linf => delta.clamp(-eps, eps),
            Norm::L2 => {
                let n = l2(&delta);
                if n > eps { delta * (eps / n) } else { delta }
            }
        };
        (clean.clone() + delta).clamp(0.0, 1.0)
    }

    /// A uniformly random start inside the ball (L-inf: each pixel in `[-eps, eps]`; L2: a
    /// random direction at a random radius), clipped to `[0, 1]`.
    pub fn random_start(self, clean: &Tensor<4>, eps: f64) -> Tensor<4> {
        let device = clean.device();
        let shape = clean.shape();
        let delta = match self {
            Norm::Linf => Tensor::<4>::random(shape, Distribution::Uniform(-eps, eps), &device),
            Norm::L2 => {
                let d = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                let r = Tensor::<1>::random([1], Distribution::Uniform(0.0, 1.0), &device)
                    .into_scalar::<f64>();
                let n = d.num_elements_f64();
                let radius = eps * r.powf(1.0 / n);
                let len = l2(&d).max(1e-12);
                d * (radius / len)
            }
        };
        self.project(clean.clone() + delta, clean, eps)
    }

    /// The size of `delta` in this norm.
    pub fn measure(self, delta: &Tensor<4>) -> f64 {
        match self {
            Norm::Linf => delta.clone().abs().max().into_scalar::<f64>(),
            Norm::L2 => l2(delta),
        }
    }
}

/// `||t||_2`.
pub fn l2(t: &Tensor<4>) -> f64 {
    t.clone().powi_scalar(2).sum().into_scalar::<f64>().sqrt()
}

trait NumElements {
    fn num_elements_f64(&self) -> f64;
}

impl NumElements for Tensor<4> {
    fn num_elements_f64(&self) -> f64 {
        self.shape().num_elements() as f64
    }
}
