//! Adversarial examples through frozen pretrained ConvBN models: FGSM and PGD, L-inf and L2,
//! untargeted or targeted, in any ConvBN mode. Generating them needs only input gradients
//! through a frozen network, many times over: in Tune mode each step keeps only the blocks'
//! inputs for backward.

#![warn(missing_docs)]

pub mod agreement;
pub mod attack;
pub mod norm;

pub use attack::{AttackConfig, AttackStepCost, Method, Outcome, attack};
pub use norm::Norm;

/// Errors of attacks.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    /// An option is out of range.
    #[error("{0}")]
    Config(String),
    /// A ConvBN block refused the input.
    #[error(transparent)]
    ConvBn(#[from] convbn::ConvBnError),
    /// Models, images and assets.
    #[error(transparent)]
    Zoo(#[from] convbn_zoo::ZooError),
}
