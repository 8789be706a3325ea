//! The fused Tune op on autodiff backends: one graph node, backward keeps only `X`.
//!
//! Forward: `Z = conv(X, W') + b'` (see [`crate::fold`]). Backward, given `G = dL/dZ`, with
//! `W'`, `s`, `b - mean` recomputed from the parameters:
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
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_autodiff::{Autodiff, NodeId};

use super::TuneConvOps;
use crate::fold::{BnParams, fold_primitives};
use crate::geometry::{
    ConvGeometry, conv_weight_backward, conv_x_backward_from_shape, per_channel, sum_per_channel,
};

/// What the backward keeps: `X` (through the checkpointer, only when a parameter needs a
/// gradient), its shape, and handles to the parameters.
#[derive(Debug, Clone)]
struct TuneState<B: Backend> {
    /// X, kept only when W or gamma needs a gradient (`dW'` needs X; `dX` does not).
    x: Option<NodeId>,
    /// Shape of X, for `dX` without X.
    x_shape: Shape,
    weight: FloatTensor<B>,
    bn: BnParams<B>,
    geometry: ConvGeometry,
}

#[derive(Debug)]
struct TuneConvBackward;

impl<B: Backend> Backward<B, 5> for TuneConvBackward {
    type State = TuneState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 5>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let TuneState {
            x,
            x_shape,
            weight,
            bn,
            geometry,
        } = ops.state;
        let x = x.map(|x| checkpointer.retrieve_node_output::<FloatTensor<B>>(x));
        let rank = weight.shape().num_dims();
        let folded = fold_primitives::<B>(weight.clone(), bn);

        if let Some(node) = node_x {
            let dx = conv_x_backward_from_shape::<B>(
                x_shape,
                folded.weight.clone(),
                grad.clone(),
                &geometry,
            );
            grads.register::<B>(node.id, dx);
        }

        let needs_bias_grad = node_bias.is_some() || node_gamma.is_some() || node_beta.is_some();
        let d_bias_folded = needs_bias_grad.then(|| sum_per_channel::<B>(grad.clone()));

        if let (Some(x), true) = (x, node_weight.is_some() || node_gamma.is_some()) {
            let d_weight_folded = conv_weight_backward::<B>(x, folded.weight, grad, &geometry);
            if let Some(node) = node_gamma {
                let out_channels = weight.shape()[0];
                let per_weight = B::float_mul(d_weight_folded.clone(), weight);
                let per_weight = B::float_reshape(
                    per_weight,
                    [
                        out_channels,
                        d_weight_folded.shape().num_elements() / out_channels,
                    ]
                    .into(),
                );
                let d_scale =
                    B::float_reshape(B::float_sum_dim(per_weight, 1), [out_channels].into());
                let d_bias_folded = d_bias_folded
                    .clone()
                    .expect("computed when gamma is tracked");
                let d_scale =
                    B::float_add(d_scale, B::float_mul(d_bias_folded, folded.centered_bias));
                grads.register::<B>(node.id, B::float_mul(d_scale, folded.inv_std));
            }
            if let Some(node) = node_weight {
                let scale = per_channel::<B>(folded.scale.clone(), rank, 0);
                grads.register::<B>(node.id, B::float_mul(d_weight_folded, scale));
            }
        }

        if let Some(d_bias_folded) = d_bias_folded {
            if let Some(node) = node_bias {
                grads.register::<B>(node.id, B::float_mul(d_bias_folded.clone(), folded.scale));
            }
            if let Some(node) = node_beta {
                grads.register::<B>(node.id, d_bias_folded);
            }
        }
    }
}

impl<B: Backend + TuneConvOps, C: CheckpointStrategy> TuneConvOps for Autodiff<B, C> {
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

        // The inner backend's forward (fold + one conv); the folded weight is dropped here.
        let forward = |x: FloatTensor<B>, weight: FloatTensor<B>, bn: BnParams<B>| {
            let some = |t: Option<FloatTensor<B>>| t.expect("all vectors are given to tune_conv");
            B::tune_conv(
                x,
                weight,
                some(bn.bias),
                some(bn.gamma),
                some(bn.beta),
                bn.mean,
                bn.var,
                eps,
                geometry.clone(),
            )
        };
        match TuneConvBackward
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
                let out = forward(x.into_primitive(), weight.clone(), bn.clone());
                let state = TuneState {
                    x: x_state,
                    x_shape,
                    weight,
                    bn,
                    geometry,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(x.into_primitive(), weight.into_primitive(), bn))
            }
        }
    }
}
