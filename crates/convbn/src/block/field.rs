//! The names of a [`ConvBn`](crate::ConvBn) block's tensor fields, as burn's visitors, records
//! and checkpoints see them. The one place those names are spelled.

use core::fmt;

/// A tensor field of a [`ConvBn`](crate::ConvBn) block.
///
/// burn visits a block's fields under these names (records, checkpoints and parameter paths
/// end in them: `layer1.0.conv1.gamma`); [`ModulePath::block_field`](crate::ModulePath::block_field)
/// tells which one a visitor is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockField {
    /// Conv weight `W` (`W'` once folded).
    Weight,
    /// Conv bias `b` (`b'` once folded).
    Bias,
    /// BN scale `gamma`.
    Gamma,
    /// BN shift `beta`.
    Beta,
    /// BN running mean.
    RunningMean,
    /// BN running (unbiased) variance.
    RunningVar,
}

impl BlockField {
    /// Every field, in the order burn visits them.
    pub const ALL: [BlockField; 6] = [
        BlockField::Weight,
        BlockField::Bias,
        BlockField::Gamma,
        BlockField::Beta,
        BlockField::RunningMean,
        BlockField::RunningVar,
    ];

    /// The field's name in parameter paths and records.
    pub const fn name(self) -> &'static str {
        match self {
            BlockField::Weight => "weight",
            BlockField::Bias => "bias",
            BlockField::Gamma => "gamma",
            BlockField::Beta => "beta",
            BlockField::RunningMean => "running_mean",
            BlockField::RunningVar => "running_var",
        }
    }

    /// The field named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether the field is a running statistic (state, not a trainable parameter).
    pub const fn is_running_statistic(self) -> bool {
        matches!(self, BlockField::RunningMean | BlockField::RunningVar)
    }

    /// Whether the field belongs to the convolution (`weight`, `bias`) rather than to BN.
    pub const fn is_conv(self) -> bool {
        matches!(self, BlockField::Weight | BlockField::Bias)
    }
}

impl fmt::Display for BlockField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
