//! Adversarial examples through frozen pretrained ConvBN models: FGSM and PGD, L-inf and L2,
//! untargeted or targeted, in any ConvBN mode. Generating them needs only input gradients
//! through a frozen network, many times over: in Tune mode each step keeps only the blocks'
//! inputs for backward.

#![warn(missing_docs)]

pub mod agreement;
pub mod attack;
pub mod norm;

pub use attack::{AttackConfig, Method, Outcome, StepCost, attack};
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

/// Parse `"4/255"`, `"0.5"` or `"2"` as a number.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let (a, b): (f64, f64) = (
                a.trim()
                    .parse()
                    .map_err(|_| format!("'{s}' is not a number"))?,
                b.trim()
                    .parse()
                    .map_err(|_| format!("'{s}' is not a number"))?,
            );
            if b == 0.0 {
                return Err(format!("'{s}' divides by zero"));
            }
            a / b
        }
        None => s
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a number"))?,
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("'{s}' is not a finite number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_parse() {
        assert_eq!(parse_fraction("4/255").unwrap(), 4.0 / 255.0);
        assert_eq!(parse_fraction("0.5").unwrap(), 0.5);
        assert!(parse_fraction("1/0").is_err());
        assert!(parse_fraction("x").is_err());
    }
}
