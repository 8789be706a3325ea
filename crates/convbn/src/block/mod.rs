//! The [`ConvBn`] block: `Z = BN(conv(X, W) + b)` in one of four [`Mode`]s.

use burn::backend::Dispatch;
use burn::module::{Param, ParamId, RunningState};
use burn::tensor::Tensor;

use crate::activation::Activation;
use crate::fold::fold;
use crate::geometry::ConvGeometry;
use crate::ops::TuneConvOps;
use crate::validate::statistics_problem;
use crate::walk::{BlockInfo, BlockView};
use crate::{ConvBnError, Mode, Result};

mod field;
mod module_impl;

pub use field::BlockField;

/// A 1-d ConvBN block (tensors `[N, C, L]`).
pub type ConvBn1d = ConvBn<3>;
/// A 2-d ConvBN block (tensors `[N, C, H, W]`).
pub type ConvBn2d = ConvBn<4>;
/// A 3-d ConvBN block (tensors `[N, C, D, H, W]`).
pub type ConvBn3d = ConvBn<5>;

/// Fixed (non-tensor) options of a block.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BlockOptions {
    pub geometry: ConvGeometry,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel_size: Vec<usize>,
    pub eps: f64,
    pub momentum: f64,
    pub affine: bool,
    pub conv_bias: bool,
}

/// A convolution followed by BatchNorm, `Z = BN(conv(X, W) + b)`, for tensors of rank `R`
/// (3, 4 or 5: see [`ConvBn1d`], [`ConvBn2d`], [`ConvBn3d`]); build it with
/// [`ConvBnConfig`](crate::ConvBnConfig).
///
/// What each [`Mode`] keeps for backward, per block, on burn's autodiff:
/// - Train: `X` for the conv, the conv output for batch-norm's backward.
/// - Eval: `X` for the conv and the normalised conv output (BN's `gamma` multiply needs it).
/// - Deploy: `X` only (the conv's weight is the parameter `W'` itself): one node
///   ([`TuneConvOps::conv_activation`]).
/// - Tune: `X` only: one fused node ([`TuneConvOps::tune_conv`]) recomputes `W'` in backward.
///
/// With [`forward_activated`](Self::forward_activated), Deploy's and Tune's nodes also apply
/// the activation; Train and Eval apply it as a node of its own after BN
/// ([`Activation::apply`]). Either way the activation keeps its output (the next layer's
/// input) rather than `Z`.
///
/// Switch modes with [`set_mode`](crate::set_mode) (works on whole models as well).
/// In Deploy mode `weight` holds `W'` and `bias` holds `b'`; `gamma`/`beta` are gone.
///
/// `clone()` gives the copy running statistics of its own (burn's `RunningState` shares them
/// between clones), so that Train-mode updates or a failed load on a copy never reach the
/// original.
#[derive(Debug)]
pub struct ConvBn<const R: usize> {
    /// Conv weight `[C_out, C_in/groups, k...]` (`W'` once folded).
    pub weight: Param<Tensor<R>>,
    /// Conv bias `[C_out]`, if any (`b'` once folded).
    pub bias: Option<Param<Tensor<1>>>,
    /// BN scale `[C_out]` when affine (absent once folded).
    pub gamma: Option<Param<Tensor<1>>>,
    /// BN shift `[C_out]` when affine (absent once folded).
    pub beta: Option<Param<Tensor<1>>>,
    /// BN running mean `[C_out]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// BN running variance `[C_out]` (unbiased, as PyTorch stores it).
    pub running_var: RunningState<Tensor<1>>,
    /// How the block computes; Deploy once folded, for good.
    pub(crate) mode: Mode,
    /// Set by burn's `valid()` (inference runs Train and Tune as Eval): the mode `train()`
    /// returns to.
    pub(crate) suspended: Option<Mode>,
    pub(crate) options: BlockOptions,
}

impl<const R: usize> Clone for ConvBn<R> {
    fn clone(&self) -> Self {
        // Separate storage (running statistics are not optimizer parameters: a fresh id is
        // harmless, and checkpoints name them by path).
        let own = |state: &RunningState<Tensor<1>>| RunningState::new(state.value_sync());
        Self {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            gamma: self.gamma.clone(),
            beta: self.beta.clone(),
            running_mean: own(&self.running_mean),
            running_var: own(&self.running_var),
            mode: self.mode,
            suspended: self.suspended,
            options: self.options.clone(),
        }
    }
}

impl<const R: usize> ConvBn<R> {
    pub(crate) fn from_parts(
        weight: Param<Tensor<R>>,
        bias: Option<Param<Tensor<1>>>,
        gamma: Option<Param<Tensor<1>>>,
        beta: Option<Param<Tensor<1>>>,
        running_mean: RunningState<Tensor<1>>,
        running_var: RunningState<Tensor<1>>,
        options: BlockOptions,
    ) -> Self {
        Self {
            weight,
            bias,
            gamma,
            beta,
            running_mean,
            running_var,
            mode: Mode::Eval,
            suspended: None,
            options,
        }
    }

    /// The mode this block runs in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.options.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.options.out_channels
    }

    /// Kernel extent per spatial dimension.
    pub fn kernel_size(&self) -> &[usize] {
        &self.options.kernel_size
    }

    /// Stride, padding, dilation and groups.
    pub fn geometry(&self) -> &ConvGeometry {
        &self.options.geometry
    }

    /// BatchNorm epsilon.
    pub fn eps(&self) -> f64 {
        self.options.eps
    }

    /// Running-statistics momentum.
    pub fn momentum(&self) -> f64 {
        self.options.momentum
    }

    /// Check the running statistics (finite, variance `>= 0`).
    pub fn validate(&self) -> Result<()> {
        match statistics_problem(
            &self.running_mean.value_sync(),
            &self.running_var.value_sync(),
        ) {
            None => Ok(()),
            Some(what) => Err(ConvBnError::InvalidStatistics {
                path: String::new(),
                what,
            }),
        }
    }

    /// Apply the block to `x` of shape `[N, C_in, spatial...]` in its current mode.
    ///
    /// Errors (never panics) when the channel count is wrong or the input is smaller than the
    /// dilated kernel, or when Train mode gets a single value per channel.
    pub fn forward(&self, x: Tensor<R>) -> Result<Tensor<R>> {
        self.forward_activated(x, Activation::Identity)
    }

    /// `activation(self.forward(x))`, with the activation fused into Tune's and Deploy's op.
    ///
    /// Tune and Deploy then keep only `X` for backward even with a ReLU after the block: the
    /// activation's mask is read off the output, which the next layer keeps anyway. Train and
    /// Eval apply it after BN with [`Activation::apply`], which keeps that output as well.
    /// Same errors as [`forward`](Self::forward).
    pub fn forward_activated(&self, x: Tensor<R>, activation: Activation) -> Result<Tensor<R>> {
        self.check_input(&x.dims())?;
        let mode = self.mode();
        let bias = self.bias.as_ref().map(|b| b.val());
        let z = match mode {
            Mode::Deploy => {
                return Ok(self.conv(x, self.weight.val(), bias, activation));
            }
            Mode::Tune => {
                let device = x.device();
                let (gamma, beta) = self.affine_or_identity(&device);
                // No conv bias: an empty vector (nothing allocated or kept for it).
                let bias = bias.unwrap_or_else(|| Tensor::zeros([0], &device));
                let out = <Dispatch as TuneConvOps>::tune_conv(
                    x.into_dispatch(),
                    self.weight.val().into_dispatch(),
                    bias.into_dispatch(),
                    gamma.into_dispatch(),
                    beta.into_dispatch(),
                    self.running_mean.value_sync().into_dispatch(),
                    self.running_var.value_sync().into_dispatch(),
                    self.options.eps,
                    self.options.geometry.clone(),
                    activation,
                );
                return Ok(Tensor::from_dispatch(out));
            }
            Mode::Eval => {
                let y = self.conv(x, self.weight.val(), bias, Activation::Identity);
                let device = y.device();
                let (gamma, beta) = self.affine_or_identity(&device);
                burn::tensor::module::batch_norm(
                    y,
                    gamma,
                    beta,
                    self.running_mean.value_sync().to_device(&device),
                    self.running_var.value_sync().to_device(&device),
                    self.options.eps,
                )
            }
            Mode::Train => self.forward_train(x, bias)?,
        };
        Ok(activation.apply(z))
    }

    fn forward_train(&self, x: Tensor<R>, bias: Option<Tensor<1>>) -> Result<Tensor<R>> {
        let y = self.conv(x, self.weight.val(), bias, Activation::Identity);
        let dims = y.dims();
        let per_channel = dims.iter().product::<usize>() / dims[1];
        if per_channel < 2 {
            return Err(ConvBnError::InputShape {
                got: dims.to_vec(),
                expected: "more than one value per channel in Train mode (batch statistics); \
                           use a larger batch or Eval/Tune mode"
                    .into(),
            });
        }
        let device = y.device();
        let (gamma, beta) = self.affine_or_identity(&device);
        let out = burn::tensor::module::batch_norm_train(y, gamma, beta, self.options.eps);
        let m = self.options.momentum;
        let unbiased = per_channel as f64 / (per_channel - 1) as f64;
        let mean = self.running_mean.value_sync().to_device(&device);
        let var = self.running_var.value_sync().to_device(&device);
        let mean = mean.mul_scalar(1.0 - m) + out.mean.detach().mul_scalar(m);
        let var = var.mul_scalar(1.0 - m) + out.variance.detach().mul_scalar(m * unbiased);
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        Ok(out.output)
    }

    /// `activation(conv(x, weight) + bias)` as one node ([`TuneConvOps::conv_activation`]):
    /// keeps `X` and the weight handle like burn's `conv`, and computes the weight gradient
    /// with the same kernel as Tune's op, so that every mode's convolution costs the same.
    fn conv(
        &self,
        x: Tensor<R>,
        weight: Tensor<R>,
        bias: Option<Tensor<1>>,
        activation: Activation,
    ) -> Tensor<R> {
        let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
        let geometry = self.options.geometry.clone();
        Tensor::from_dispatch(match bias {
            Some(bias) => <Dispatch as TuneConvOps>::conv_activation(
                x,
                weight,
                bias.into_dispatch(),
                geometry,
                activation,
            ),
            None => {
                <Dispatch as TuneConvOps>::conv_activation_unbiased(x, weight, geometry, activation)
            }
        })
    }

    /// BN's `gamma` and `beta`, or ones and zeros for a BN without affine parameters.
    fn affine_or_identity(&self, device: &burn::tensor::Device) -> (Tensor<1>, Tensor<1>) {
        let c = self.options.out_channels;
        let gamma = self
            .gamma
            .as_ref()
            .map_or_else(|| Tensor::ones([c], device), |g| g.val());
        let beta = self
            .beta
            .as_ref()
            .map_or_else(|| Tensor::zeros([c], device), |b| b.val());
        (gamma, beta)
    }

    fn check_input(&self, dims: &[usize]) -> Result<()> {
        let o = &self.options;
        let spatial = &dims[2..];
        let fits = dims[1] == o.in_channels
            && o.geometry.output_size(spatial, &o.kernel_size).is_some()
            && dims[0] > 0;
        if fits {
            return Ok(());
        }
        let reach: Vec<usize> = (0..o.kernel_size.len())
            .map(|i| {
                (o.geometry.dilation[i] * (o.kernel_size[i] - 1) + 1)
                    .saturating_sub(o.geometry.padding[i].0 + o.geometry.padding[i].1)
            })
            .collect();
        Err(ConvBnError::InputShape {
            got: dims.to_vec(),
            expected: format!(
                "[N >= 1, {}, spatial >= {:?}] (in_channels = {}, dilated kernel minus padding)",
                o.in_channels, reach, o.in_channels
            ),
        })
    }

    /// Fold BN into `weight`/`bias` (Deploy). Leaves the block unchanged and returns the
    /// problem when the running statistics are unusable.
    pub(crate) fn fold_in_place(&mut self) -> Result<()> {
        if self.mode == Mode::Deploy {
            return Ok(());
        }
        self.validate()?;
        let (weight, bias) = fold(
            self.weight.val().detach(),
            self.bias.as_ref().map(|b| b.val().detach()),
            self.gamma.as_ref().map(|g| g.val().detach()),
            self.beta.as_ref().map(|b| b.val().detach()),
            self.running_mean.value_sync(),
            self.running_var.value_sync(),
            self.options.eps,
        );
        // The folded parameters are new (fresh ids: optimizer state of W does not apply to W')
        // but stay as trainable as the weight was: a frozen model stays frozen.
        let (_, old_weight, weight_mapper) = self.weight.clone().consume();
        let tracked = old_weight.is_require_grad();
        let trainable = tracked || !old_weight.is_autodiff();
        let bias = bias.detach().set_require_grad(tracked);
        self.bias = Some(match self.bias.take() {
            Some(old) => {
                let (_, _, mapper) = old.consume();
                Param::from_mapped_value(ParamId::new(), bias, mapper)
            }
            None => Param::from_tensor(bias).set_require_grad(trainable),
        });
        self.weight = Param::from_mapped_value(
            ParamId::new(),
            weight.detach().set_require_grad(tracked),
            weight_mapper,
        );
        self.gamma = None;
        self.beta = None;
        self.mode = Mode::Deploy;
        self.suspended = None;
        Ok(())
    }

    /// Switch to `mode` (the one place a block's mode changes): Deploy folds; a folded block
    /// stays folded, and a fold that the statistics do not allow leaves the block as it was
    /// ([`set_mode`](crate::set_mode) checks both before switching).
    pub(crate) fn switch_to(&mut self, mode: Mode) {
        match (self.mode, mode) {
            (Mode::Deploy, _) => {}
            (_, Mode::Deploy) => {
                let _ = self.fold_in_place();
            }
            (_, mode) => {
                self.mode = mode;
                self.suspended = None;
            }
        }
    }

    /// What a model-wide scan sees of this block (its path is filled in by the scan).
    pub(crate) fn view(&self) -> BlockView {
        let param_numel = |p: &Option<Param<Tensor<1>>>| p.as_ref().map_or(0, |p| p.shape()[0]);
        let weight_shape = self.weight.shape().to_vec();
        let num_params = weight_shape.iter().product::<usize>()
            + param_numel(&self.bias)
            + param_numel(&self.gamma)
            + param_numel(&self.beta);
        BlockView {
            info: BlockInfo {
                path: String::new(),
                mode: self.mode,
                weight_shape,
                conv_bias: self.bias.is_some(),
                affine: self.gamma.is_some(),
                num_params,
                eps: self.options.eps,
            },
            gamma: self.gamma.as_ref().map(|g| g.val()),
            running_mean: self.running_mean.value_sync(),
            running_var: self.running_var.value_sync(),
        }
    }
}
