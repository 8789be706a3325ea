//! The four ways a ConvBN block can run.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ConvBnError;

/// How a [`ConvBn`](crate::ConvBn) block computes `Z = BN(conv(X, W) + b)`.
///
/// | mode   | forward                               | kept for backward (per block)      |
/// |--------|---------------------------------------|------------------------------------|
/// | Train  | conv, BN with batch statistics        | X, Y = conv(X), normalised Y       |
/// | Eval   | conv, BN with running statistics      | X and the normalised Y             |
/// | Deploy | one conv with folded `W'`, `b'`        | X (W' is the parameter itself)     |
/// | Tune   | fold on the fly, one conv (fused op)   | X only (W' recomputed in backward) |
///
/// Tune's forward and every gradient equal Eval's; its activation memory equals Deploy's.
/// Deploy trains `W'` and `b'` directly, which is Eval with a per-output-channel learning rate
/// multiplied by `1/s^2` (`s = gamma/sqrt(var+eps)`), and is unstable for that reason.
///
/// Serialised (logs, summaries, configs) by its [`name`](Self::name): `"tune"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Batch statistics; running statistics updated with momentum (unbiased variance).
    Train,
    /// Frozen running statistics as a per-channel affine after the convolution.
    Eval,
    /// BatchNorm folded into the convolution once; `W'`, `b'` are the parameters (irreversible).
    Deploy,
    /// Fold on the fly every forward with a fused, memory-lean backward; equals Eval exactly.
    Tune,
}

impl Mode {
    /// All modes, in the order Train, Eval, Deploy, Tune.
    pub const ALL: [Mode; 4] = [Mode::Train, Mode::Eval, Mode::Deploy, Mode::Tune];

    /// The lower-case name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Train => "train",
            Mode::Eval => "eval",
            Mode::Deploy => "deploy",
            Mode::Tune => "tune",
        }
    }

    /// Whether the mode reads the frozen running statistics (Eval, Tune; Deploy baked them in).
    pub fn uses_running_stats(self) -> bool {
        matches!(self, Mode::Eval | Mode::Tune)
    }
}

impl fmt::Display for Mode {
    /// The name, honouring width and alignment (`{:<6}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Mode {
    type Err = ConvBnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ConvBnError::UnknownMode(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_serialise_by_name_and_display_with_padding() {
        for mode in Mode::ALL {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{}\"", mode.name()));
            assert_eq!(serde_json::from_str::<Mode>(&json).unwrap(), mode);
            assert_eq!(mode.name().parse::<Mode>().unwrap(), mode);
        }
        assert!(serde_json::from_str::<Mode>("\"fold\"").is_err());
        assert_eq!(format!("[{:<6}]", Mode::Tune), "[tune  ]");
    }
}
