//! [`ConvBnConfig`]: the hyper-parameters of a block, validated when the block is built.

use burn::module::{Param, RunningState};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::block::{BlockOptions, ConvBn};
use crate::geometry::ConvGeometry;
use crate::validate::statistics_problem;
use crate::{BlockField, ConvBnError, Mode, Result};

/// One value for every spatial dimension, or one per dimension (JSON: `2` or `[2, 1]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerDim {
    /// The same value along every spatial dimension.
    All(usize),
    /// One value per spatial dimension.
    Each(Vec<usize>),
}

impl PerDim {
    fn expand(&self, dims: usize, what: &str) -> Result<Vec<usize>> {
        match self {
            PerDim::All(v) => Ok(vec![*v; dims]),
            PerDim::Each(v) if v.len() == dims => Ok(v.clone()),
            PerDim::Each(v) => Err(ConvBnError::InvalidConfig(format!(
                "{what} has {} entries but the kernel has {dims} spatial dimensions",
                v.len()
            ))),
        }
    }
}

impl From<usize> for PerDim {
    fn from(v: usize) -> Self {
        PerDim::All(v)
    }
}
impl<const N: usize> From<[usize; N]> for PerDim {
    fn from(v: [usize; N]) -> Self {
        PerDim::Each(v.to_vec())
    }
}
impl From<Vec<usize>> for PerDim {
    fn from(v: Vec<usize>) -> Self {
        PerDim::Each(v)
    }
}

/// Hyper-parameters of a [`ConvBn`] block, with PyTorch's defaults
/// (`nn.ConvNd(..., bias=False)` followed by `nn.BatchNormNd(eps=1e-5, momentum=0.1)`).
///
/// The number of spatial dimensions is the length of `kernel_size` (1, 2 or 3) and must match
/// the block's tensor rank `R = dims + 2` chosen at [`init`](Self::init).
///
/// ```
/// use burn::tensor::Device;
/// use convbn::{ConvBn2d, ConvBnConfig, Mode};
/// let block: ConvBn2d = ConvBnConfig::new(3, 16, [3, 3])
///     .with_stride(2)
///     .with_padding(1)
///     .init(&Device::flex())
///     .unwrap();
/// assert_eq!(block.mode(), Mode::Train);
/// ```
///
/// It is a burn [`Config`](burn::config::Config) (save/load as JSON; fields left out of a
/// file take their defaults). Unlike `#[derive(Config)]`, the constructor and setters take
/// anything that converts (`[3, 3]`, `with_stride(2)`), so the fields are written out here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default = "ConvBnConfig::unset")]
pub struct ConvBnConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (= BatchNorm features).
    pub out_channels: usize,
    /// Kernel extent per spatial dimension.
    pub kernel_size: Vec<usize>,
    /// Stride (default 1).
    pub stride: PerDim,
    /// Symmetric zero padding (default 0); see [`with_padding_pairs`](Self::with_padding_pairs).
    pub padding: PerDim,
    /// Asymmetric `(begin, end)` padding; overrides `padding` when set.
    pub padding_pairs: Option<Vec<(usize, usize)>>,
    /// Dilation (default 1).
    pub dilation: PerDim,
    /// Channel groups (default 1; `in_channels` for depthwise).
    pub groups: usize,
    /// Whether the convolution has a bias (default false, as before BatchNorm).
    pub bias: bool,
    /// Whether BatchNorm has learnable `gamma`, `beta` (default true).
    pub affine: bool,
    /// BatchNorm epsilon (default 1e-5).
    pub eps: f64,
    /// Running-statistics momentum, PyTorch convention: `new = (1-m)*old + m*batch` (default 0.1).
    pub momentum: f64,
    /// The mode the block starts in (default Train, like a fresh PyTorch module).
    pub mode: Mode,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $field:ident: PerDim) => {
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<PerDim>) -> Self {
            self.$field = value.into();
            self
        }
    };
    ($(#[$doc:meta])* $name:ident, $field:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
    };
}

impl burn::config::Config for ConvBnConfig {}

impl core::fmt::Display for ConvBnConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&burn::config::config_to_json(self))
    }
}

impl ConvBnConfig {
    /// The defaults of every optional field, with no channels or kernel: what a JSON file
    /// that leaves fields out starts from. `init` refuses it until the required fields are
    /// given.
    fn unset() -> Self {
        Self::new(0, 0, Vec::new())
    }

    /// A block from `in_channels` to `out_channels` with the given kernel (`[k]`, `[kh, kw]` or
    /// `[kd, kh, kw]`), stride 1, no padding, no conv bias, affine BN.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: impl Into<Vec<usize>>,
    ) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: kernel_size.into(),
            stride: PerDim::All(1),
            padding: PerDim::All(0),
            padding_pairs: None,
            dilation: PerDim::All(1),
            groups: 1,
            bias: false,
            affine: true,
            eps: 1e-5,
            momentum: 0.1,
            mode: Mode::Train,
        }
    }

    setter!(/// Set the stride (one value or one per dimension).
        with_stride, stride: PerDim);
    setter!(/// Set symmetric padding (one value or one per dimension).
        with_padding, padding: PerDim);
    setter!(/// Set the dilation (one value or one per dimension).
        with_dilation, dilation: PerDim);
    setter!(/// Set the number of channel groups.
        with_groups, groups: usize);
    setter!(/// Give the convolution a bias.
        with_bias, bias: bool);
    setter!(/// Make BatchNorm affine (learnable gamma, beta) or not.
        with_affine, affine: bool);
    setter!(/// Set BatchNorm's epsilon.
        with_eps, eps: f64);
    setter!(/// Set the running-statistics momentum.
        with_momentum, momentum: f64);

    /// Start the block in `mode`. Deploy folds the freshly initialised statistics.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Set asymmetric `(begin, end)` padding per spatial dimension (e.g. TensorFlow "SAME").
    pub fn with_padding_pairs(mut self, pairs: Vec<(usize, usize)>) -> Self {
        self.padding_pairs = Some(pairs);
        self
    }

    /// Validate and return the block's fixed options.
    pub(crate) fn options(&self, rank: usize) -> Result<BlockOptions> {
        let invalid = |msg: String| Err(ConvBnError::InvalidConfig(msg));
        let dims = self.kernel_size.len();
        if !(1..=3).contains(&dims) {
            return invalid(format!(
                "kernel_size must have 1, 2 or 3 entries, got {dims}"
            ));
        }
        if rank != dims + 2 {
            return invalid(format!(
                "a {dims}-d kernel needs tensors of rank {}, but the block was built with rank \
                 {rank}; use ConvBn{dims}d",
                dims + 2
            ));
        }
        if self.in_channels == 0 || self.out_channels == 0 {
            return invalid("in_channels and out_channels must be positive".into());
        }
        if self.groups == 0
            || !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return invalid(format!(
                "groups = {} must be positive and divide in_channels = {} and out_channels = {}",
                self.groups, self.in_channels, self.out_channels
            ));
        }
        if self.kernel_size.contains(&0) {
            return invalid("kernel_size entries must be positive".into());
        }
        let stride = self.stride.expand(dims, "stride")?;
        let dilation = self.dilation.expand(dims, "dilation")?;
        if stride.contains(&0) || dilation.contains(&0) {
            return invalid("stride and dilation entries must be positive".into());
        }
        let padding = match &self.padding_pairs {
            Some(p) if p.len() == dims => p.clone(),
            Some(p) => {
                return invalid(format!(
                    "padding_pairs has {} entries, expected {dims}",
                    p.len()
                ));
            }
            None => self
                .padding
                .expand(dims, "padding")?
                .into_iter()
                .map(|p| (p, p))
                .collect(),
        };
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return invalid(format!("eps must be finite and positive, got {}", self.eps));
        }
        if !(self.momentum.is_finite() && (0.0..=1.0).contains(&self.momentum)) {
            return invalid(format!(
                "momentum must be within [0, 1], got {}",
                self.momentum
            ));
        }
        Ok(BlockOptions {
            geometry: ConvGeometry {
                stride,
                padding,
                dilation,
                groups: self.groups,
            },
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel_size: self.kernel_size.clone(),
            eps: self.eps,
            momentum: self.momentum,
            affine: self.affine,
            conv_bias: self.bias,
        })
    }

    fn weight_shape(&self) -> Vec<usize> {
        let mut shape = vec![self.out_channels, self.in_channels / self.groups.max(1)];
        shape.extend(&self.kernel_size);
        shape
    }

    /// Check this configuration for a block of tensor rank `R` without building it: the
    /// rules of [`ConvBnConfig::init`], and a weight whose element count fits in memory's
    /// address range.
    pub fn check<const R: usize>(&self) -> Result<()> {
        self.options(R)?;
        self.weight_shape()
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_mul(std::mem::size_of::<f64>()))
            .ok_or_else(|| {
                ConvBnError::InvalidConfig(format!(
                    "the weight shape {:?} overflows",
                    self.weight_shape()
                ))
            })?;
        Ok(())
    }

    /// Build a block with PyTorch's initialisation: conv weight and bias uniform in
    /// `±1/sqrt(fan_in)` (Kaiming-uniform with `a = sqrt(5)`), `gamma = 1`, `beta = 0`,
    /// running mean 0 and variance 1.
    pub fn init<const R: usize>(&self, device: &Device) -> Result<ConvBn<R>> {
        self.check::<R>()?;
        let shape = self.weight_shape();
        let fan_in: usize = shape[1..].iter().product();
        let bound = 1.0 / (fan_in as f64).sqrt();
        let uniform = Distribution::Uniform(-bound, bound);
        let c = self.out_channels;
        self.init_with(ConvBnTensors {
            weight: Tensor::random(shape, uniform, device),
            bias: self.bias.then(|| Tensor::random([c], uniform, device)),
            gamma: self.affine.then(|| Tensor::ones([c], device)),
            beta: self.affine.then(|| Tensor::zeros([c], device)),
            running_mean: Tensor::zeros([c], device),
            running_var: Tensor::ones([c], device),
        })
    }

    /// Build a block from existing tensors (a checkpoint, a reference), checking every shape
    /// and the running statistics against this configuration.
    pub fn init_with<const R: usize>(&self, tensors: ConvBnTensors<R>) -> Result<ConvBn<R>> {
        let options = self.options(R)?;
        let c = self.out_channels;
        let check = |name: &'static str, got: Vec<usize>, expected: Vec<usize>| {
            if got == expected {
                Ok(())
            } else {
                Err(ConvBnError::ParamShape {
                    name,
                    got,
                    expected,
                })
            }
        };
        check(
            BlockField::Weight.name(),
            tensors.weight.dims().to_vec(),
            self.weight_shape(),
        )?;
        for (field, wanted, t) in [
            (BlockField::Bias, self.bias, &tensors.bias),
            (BlockField::Gamma, self.affine, &tensors.gamma),
            (BlockField::Beta, self.affine, &tensors.beta),
        ] {
            let name = field.name();
            match (wanted, t) {
                (true, Some(t)) => check(name, t.dims().to_vec(), vec![c])?,
                (false, None) => {}
                (true, None) => {
                    return Err(ConvBnError::InvalidConfig(format!(
                        "the configuration has '{name}' but no tensor was given for it"
                    )));
                }
                (false, Some(_)) => {
                    return Err(ConvBnError::InvalidConfig(format!(
                        "a '{name}' tensor was given but the configuration has none \
                         (set with_bias/with_affine)"
                    )));
                }
            }
        }
        check(
            BlockField::RunningMean.name(),
            tensors.running_mean.dims().to_vec(),
            vec![c],
        )?;
        check(
            BlockField::RunningVar.name(),
            tensors.running_var.dims().to_vec(),
            vec![c],
        )?;
        if let Some(what) = statistics_problem(&tensors.running_mean, &tensors.running_var) {
            return Err(ConvBnError::InvalidStatistics {
                path: String::new(),
                what,
            });
        }
        let param = |t: Tensor<1>| Param::from_tensor(t);
        let mut block = ConvBn::from_parts(
            Param::from_tensor(tensors.weight),
            tensors.bias.map(param),
            tensors.gamma.map(param),
            tensors.beta.map(param),
            RunningState::new(tensors.running_mean),
            RunningState::new(tensors.running_var),
            options,
        );
        crate::set_mode(&mut block, self.mode)?;
        Ok(block)
    }
}

/// The tensors of one block, in PyTorch layout, for [`ConvBnConfig::init_with`].
#[derive(Clone, Debug)]
pub struct ConvBnTensors<const R: usize> {
    /// Conv weight `[C_out, C_in/groups, k...]`.
    pub weight: Tensor<R>,
    /// Conv bias `[C_out]`, if the configuration has one.
    pub bias: Option<Tensor<1>>,
    /// BN scale `[C_out]`, if affine.
    pub gamma: Option<Tensor<1>>,
    /// BN shift `[C_out]`, if affine.
    pub beta: Option<Tensor<1>>,
    /// BN running mean `[C_out]`.
    pub running_mean: Tensor<1>,
    /// BN running (unbiased) variance `[C_out]`.
    pub running_var: Tensor<1>,
}

#[cfg(test)]
mod tests {
    use burn::config::Config;

    use super::*;

    #[test]
    fn a_config_round_trips_through_json_and_missing_fields_take_defaults() {
        let config = ConvBnConfig::new(4, 8, [3, 3])
            .with_stride([2, 1])
            .with_padding_pairs(vec![(0, 1), (1, 1)])
            .with_groups(2)
            .with_eps(1e-3)
            .with_mode(Mode::Tune);
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("\"mode\":\"tune\""), "{json}");
        assert_eq!(serde_json::from_str::<ConvBnConfig>(&json).unwrap(), config);
        let dir = std::env::temp_dir().join(format!("convbn-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("block.json");
        config.save(&file).unwrap();
        assert_eq!(ConvBnConfig::load(&file).unwrap(), config);
        std::fs::remove_dir_all(&dir).unwrap();

        let partial =
            r#"{"in_channels": 3, "out_channels": 16, "kernel_size": [3, 3], "stride": 2}"#;
        let loaded: ConvBnConfig = serde_json::from_str(partial).unwrap();
        assert_eq!(loaded, ConvBnConfig::new(3, 16, [3, 3]).with_stride(2));
        // Without the required fields the defaults are not a block: `init` says so.
        let empty: ConvBnConfig = serde_json::from_str("{}").unwrap();
        assert!(empty.check::<4>().is_err());
    }
}
