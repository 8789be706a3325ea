//! The fused Tune op (and Deploy's conv+activation) on autodiff backends: one graph node whose
//! backward keeps only `X`, and the output when an activation is fused.
//!
//! Forward: `Z = conv(X, W') + b'` (see [`crate::fold`]; Deploy's op has no fold:
//! `W' = W`, `b' = b`), then `A = act(Z)` when an activation is fused. Backward:
//! `G = dL/dZ` is `dL/dA` masked by the activation's derivative, read off the kept output `A`
//! (the next layer's input, so it costs nothing extra); then, with `W'`, `s`, `b - mean`
//! recomputed from the parameters:
//!
//! ```text
//! dX     = conv_x_backward(X, W', G)
//! dW'    = conv_weight_backward(X, W', G)        db' = sum_{n, spatial} G
//! dW     = dW' * s                               db  = db' * s
//! dbeta  = db'
//! dgamma = (sum_{c_in, k} dW' * W  +  db' * (b - mean)) / sqrt(var + eps)
//! ```
//!
//! These are exactly Eval mode's gradients (chain rule through the fold).

use burn::backend::Backend;
use burn::backend::TensorMetadata;
use burn::backend::tensor::FloatTensor;
use burn::tensor::Shape;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn_autodiff::{Autodiff, NodeId};

use super::kernels::FusedKernels;
use super::{TuneConvOps, tune_forward};
use crate::activation::Activation;
use crate::fold::{BnParams, fold_primitives_with};
use crate::geometry::{
    ConvGeometry, conv_weight_backward, conv_x_backward_from_shape, sum_per_channel,
};

/// What the backward keeps: `X` (through the checkpointer, only when a parameter needs a
/// gradient), its shape, handles to the parameters, and the output when an activation is
/// fused.
#[derive(Debug, Clone)]
struct FusedState<B: Backend> {
    /// X, kept only when W or gamma needs a gradient (`dW'` needs X; `dX` does not).
    x: Option<NodeId>,
    /// Shape of X, for `dX` without X.
    x_shape: Shape,
    weight: FloatTensor<B>,
    /// The BN to fold into `weight` (Tune), or none (Deploy).
    bn: Option<BnParams<B>>,
    geometry: ConvGeometry,
    activation: Activation,
    /// What the activation's backward needs, when one is fused.
    kept: Option<Kept<B>>,
}

/// The fused activation's record of where it passes gradients.
#[derive(Debug, Clone)]
enum Kept<B: Backend> {
    /// The output `A`: free while the next layer keeps it as its input (training).
    Output(FloatTensor<B>),
    /// A one-byte mask: with frozen parameters the next conv keeps no input, so keeping `A`
    /// would cost four bytes per element.
    Mask(burn::backend::tensor::BoolTensor<B>),
}

/// Backward of the fused op; parents `[x, weight, bias]` (Deploy) or
/// `[x, weight, bias, gamma, beta]` (Tune).
#[derive(Debug)]
struct FusedConvBackward;

impl<B: FusedKernels, const N: usize> Backward<B, N> for FusedConvBackward {
    type State = FusedState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let parent = |i: usize| ops.parents.get(i).cloned().flatten();
        let [node_x, node_weight, node_bias, node_gamma, node_beta] = [0, 1, 2, 3, 4].map(parent);
        let grad = grads.consume::<B>(&ops.node);
        let FusedState {
            x,
            x_shape,
            weight,
            bn,
            geometry,
            activation,
            kept,
        } = ops.state;
        let grad = match kept {
            Some(Kept::Output(output)) => activation.backward::<B>(output, grad),
            Some(Kept::Mask(mask)) => B::masked_gradient(mask, grad),
            None => grad,
        };
        let x = x.map(|x| checkpointer.retrieve_node_output::<FloatTensor<B>>(x));
        let folded = bn.map(|bn| fold_primitives_with::<B>(weight.clone(), bn, B::scale_weight));
        let effective_weight = folded
            .as_ref()
            .map_or_else(|| weight.clone(), |f| f.weight.clone());

        if let Some(node) = node_x {
            let dx = conv_x_backward_from_shape::<B>(
                x_shape,
                effective_weight.clone(),
                grad.clone(),
                &geometry,
            );
            grads.register::<B>(node.id, dx);
        }

        let needs_bias_grad = node_bias.is_some() || node_gamma.is_some() || node_beta.is_some();
        let d_bias_folded = needs_bias_grad.then(|| sum_per_channel::<B>(grad.clone()));

        if let (Some(x), true) = (x, node_weight.is_some() || node_gamma.is_some()) {
            let d_weight_folded = conv_weight_backward::<B>(x, effective_weight, grad, &geometry);
            let (d_weight, d_scale) = match &folded {
                Some(f) => {
                    let (d_weight, d_scale) =
                        B::scale_weight_backward(d_weight_folded, weight, f.scale.clone());
                    (d_weight, Some(d_scale))
                }
                None => (d_weight_folded, None),
            };
            if let (Some(node), Some(folded), Some(d_scale)) = (node_gamma, &folded, d_scale) {
                let d_bias_folded = d_bias_folded
                    .clone()
                    .expect("computed when gamma is tracked");
                let d_scale = B::float_add(
                    d_scale,
                    B::float_mul(d_bias_folded, folded.centered_bias.clone()),
                );
                grads.register::<B>(node.id, B::float_mul(d_scale, folded.inv_std.clone()));
            }
            if let Some(node) = node_weight {
                grads.register::<B>(node.id, d_weight);
            }
        }

        if let Some(d_bias_folded) = d_bias_folded {
            if let Some(node) = node_bias {
                let d_bias = match &folded {
                    Some(f) => B::float_mul(d_bias_folded.clone(), f.scale.clone()),
                    None => d_bias_folded.clone(),
                };
                grads.register::<B>(node.id, d_bias);
            }
            if let Some(node) = node_beta {
                grads.register::<B>(node.id, d_bias_folded);
            }
        }
    }
}

/// Record the fused op on the graph with parents `guards` (`x` first, `weight` second), or run
/// it untracked. `forward` computes the inner backend's output from `(x, weight)`.
#[allow(clippy::too_many_arguments)]
fn record<B: FusedKernels, C: CheckpointStrategy, const N: usize>(
    guards: [NodeGuard; N],
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    keep_x: bool,
    bn: Option<BnParams<B>>,
    geometry: ConvGeometry,
    activation: Activation,
    forward: impl FnOnce(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    match FusedConvBackward
        .prepare::<C>(guards)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            // Frozen parameters (adversarial attacks, frozen backbones): dX needs only
            // W', recomputed from the parameters, so X is not kept at all.
            let x_state = keep_x.then(|| prep.checkpoint(&x));
            let x_shape = x.primitive().shape();
            let weight = weight.into_primitive();
            let out = forward(x.into_primitive(), weight.clone());
            // A clone of a backend tensor shares its storage: keeping the output costs
            // nothing while the next layer keeps it as its input, which it does when it
            // trains (keep_x); otherwise a one-byte mask is cheaper.
            let kept = if keep_x {
                (activation != Activation::Identity).then(|| Kept::Output(out.clone()))
            } else {
                B::activation_mask(activation, out.clone()).map(Kept::Mask)
            };
            let state = FusedState {
                x: x_state,
                x_shape,
                weight,
                bn,
                geometry,
                activation,
                kept,
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(x.into_primitive(), weight.into_primitive()))
        }
    }
}

/// Backward of a standalone activation: the mask comes from the kept output.
#[derive(Debug)]
struct ActivationBackward;

impl<B: Backend> Backward<B, 1> for ActivationBackward {
    type State = (Activation, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [parent] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (activation, output) = ops.state;
        if let Some(node) = parent {
            grads.register::<B>(node.id, activation.backward::<B>(output, grad));
        }
    }
}

impl<B: TuneConvOps + FusedKernels, C: CheckpointStrategy> TuneConvOps for Autodiff<B, C> {
    fn tune_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        running_mean: FloatTensor<Self>,
        running_var: FloatTensor<Self>,
        eps: f64,
        geometry: ConvGeometry,
        activation: Activation,
    ) -> FloatTensor<Self> {
        let guards = [
            x.node(),
            weight.node(),
            bias.node(),
            gamma.node(),
            beta.node(),
        ];
        // dW' needs X; dX needs only W'. Keep X only when W or gamma needs a gradient.
        let keep_x = weight.is_tracked() || gamma.is_tracked();
        let bn = BnParams::<B> {
            bias: Some(bias.into_primitive()),
            gamma: Some(gamma.into_primitive()),
            beta: Some(beta.into_primitive()),
            mean: running_mean.into_primitive(),
            var: running_var.into_primitive(),
            eps,
        };
        let inner_bn = bn.clone();
        let inner_geometry = geometry.clone();
        // The inner backend's forward (fold with its kernel + one conv); the folded weight is
        // dropped here.
        let forward = move |x: FloatTensor<B>, weight: FloatTensor<B>| {
            tune_forward::<B>(
                x,
                weight,
                inner_bn,
                &inner_geometry,
                activation,
                B::scale_weight,
            )
        };
        record::<B, C, 5>(
            guards,
            x,
            weight,
            keep_x,
            Some(bn),
            geometry,
            activation,
            forward,
        )
    }

    fn fused_activation(z: FloatTensor<Self>, activation: Activation) -> FloatTensor<Self> {
        if activation == Activation::Identity {
            return z;
        }
        match ActivationBackward
            .prepare::<C>([z.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = B::fused_activation(z.into_primitive(), activation);
                // Shares storage with the output handed to the next layer.
                prep.finish((activation, out.clone()), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_activation(z.into_primitive(), activation))
            }
        }
    }

    fn conv_activation(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: ConvGeometry,
        activation: Activation,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), weight.node(), bias.node()];
        let keep_x = weight.is_tracked();
        let inner_bias = bias.into_primitive();
        let inner_geometry = geometry.clone();
        let forward = move |x: FloatTensor<B>, weight: FloatTensor<B>| {
            B::conv_activation(x, weight, inner_bias, inner_geometry, activation)
        };
        record::<B, C, 3>(
            guards, x, weight, keep_x, None, geometry, activation, forward,
        )
    }
}
