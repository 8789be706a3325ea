//! The fused Tune op (and every mode's conv+activation) on autodiff backends: one graph node
//! whose backward keeps only `X`, and the output when an activation is fused.
//!
//! Forward: `Z = conv(X, W') + b'` (see [`crate::fold`]; the plain conv op has no fold:
//! `W' = W`, `b' = b`), then `A = act(Z)` when an activation is fused. Backends that put BN's
//! scale on the output ([`FusedKernels::scale_on_output`]) compute the same `Z` as
//! `conv(X, W) * s + b'`, the scale, shift and activation in one pass over the output, and
//! never form `W'`.
//!
//! Backward: `G = dL/dZ` is `dL/dA` masked by the activation's derivative, read off the kept
//! output `A` (the next layer's input, so it costs nothing extra) or a one-byte mask. With
//! `W'`, `s`, `b - mean` recomputed from the parameters (weight side):
//!
//! ```text
//! dX     = conv_x_backward(X, W', G)
//! dW'    = conv_weight_backward(X, W', G)        db' = sum_{n, spatial} G
//! dW     = dW' * s                               db  = db' * s
//! dbeta  = db'
//! dgamma = (sum_{c_in, k} dW' * W  +  db' * (b - mean)) / sqrt(var + eps)
//! ```
//!
//! or, on the output side (when the backend puts `s` on the output and no `s` is zero or
//! tiny), with `G_s = G * s` made in the same pass that masks `G` and sums it per channel:
//!
//! ```text
//! dX     = conv_x_backward(X, W, G_s)          (= conv_x_backward(X, W', G))
//! dW     = conv_weight_backward(X, W, G_s)     (= dW' * s)
//! dgamma = (sum_{c_in, k} dW * W / s  +  db' * (b - mean)) / sqrt(var + eps)
//! ```
//!
//! which never touches `W'` and skips two passes over the weights. Either way these are
//! exactly Eval mode's gradients (chain rule through the fold).

use burn::backend::Backend;
use burn::backend::TensorMetadata;
use burn::backend::tensor::FloatTensor;
use burn::tensor::Shape;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn_autodiff::{Autodiff, NodeId};

use super::kernels::{ActivationGradient, BnGradients, DScale, FusedKernels, Sums};
use super::{TuneConvOps, present, tune_forward};
use crate::activation::Activation;
use crate::fold::{BnParams, fold_primitives_with};
use crate::geometry::ConvGeometry;
use crate::ops::Kept;

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

/// Largest weight (bytes) whose `dW` and `d_s` the output-side backward computes before `dX`:
/// 1 MiB, the smallest per-core L2 of the machines measured (AMD Zen 4).
const D_S_FIRST_MAX_WEIGHT_BYTES: usize = 1 << 20;

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
        let bn_nodes = [&node_bias, &node_gamma, &node_beta].map(|n| n.as_ref().map(|n| n.id));
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
        let x = x.map(|x| checkpointer.retrieve_node_output::<FloatTensor<B>>(x));
        let needs_bias_grad = node_bias.is_some() || node_gamma.is_some() || node_beta.is_some();
        let needs_weight_grad = node_weight.is_some() || node_gamma.is_some();

        // Output side: G_s = G * s, W' never formed (see the module docs), with the fold
        // prepared once for its kernels.
        let (output_side, bn) = match bn.map(B::output_fold) {
            Some(Ok(fold)) => (Some(fold), None),
            Some(Err(bn)) => (None, Some(bn)),
            None => (None, None),
        };
        if let Some(fold) = output_side {
            // `d_s = sum G * conv(X, W)`, and where the output `A` was kept `conv(X, W) = (A -
            // b') / s` wherever `G` is not zero: `d_s = (sum G A - b' sum G) / s`, from the
            // pass over `G` instead of one over the weights.
            let sums = if node_gamma.is_some() {
                Sums::GradientAndOutput
            } else {
                Sums::Gradient
            };
            let ActivationGradient {
                grad: g,
                sums: d_bias_folded,
                output_products,
            } = B::activation_gradient(grad, kept, activation, Some(&fold), sums);
            let d_bias_folded = d_bias_folded.expect("sums requested");
            // Where `d_s` comes from the weights (no output kept) and `W` fits a core's L2,
            // `dW` and `d_s` before `dX`: `d_s` reads `W` and the `dW` just written, then
            // `dX`'s product finds `W` in cache; with `dX` first, `W` came from memory for it
            // and again for `d_s` (batch 1, 112x112, Tune/Deploy: MobileNetV2 1.036x ->
            // 1.033x, RegNetX-400MF 1.047x -> 1.040x, EfficientNet-Lite0 1.062x -> 1.055x;
            // issue 17's note). Otherwise `dX` first: a larger `dW` held through `dX`'s
            // scratch raised ResNet-50's peak heap at batch 8 (its 4-8 MiB weights of the last
            // stage, early in backward).
            let d_s_from_weights = output_products.is_none() && node_gamma.is_some();
            let d_s_first = d_s_from_weights
                && weight.shape().num_elements() * weight.dtype().size()
                    <= D_S_FIRST_MAX_WEIGHT_BYTES;
            let input_gradient = |weight, g| {
                let id = node_x.as_ref()?.id;
                Some((
                    id,
                    B::conv_input_gradient(x_shape.clone(), weight, g, &geometry),
                ))
            };
            // `G_s` goes to `dW` last when `dX` came first (as before), else it is held for `dX`.
            let (mut dx, g_for_dx) = match d_s_first {
                true => (None, Some(g.clone())),
                false => (input_gradient(weight.clone(), g.clone()), None),
            };
            // `d_s` from the weights with `dW` in one kernel (`d_weight` is needed whenever gamma
            // needs a gradient), or from the output products.
            let (d_weight, d_scale) = match (x, needs_weight_grad) {
                (Some(x), true) if d_s_from_weights => {
                    let (dw, ds) =
                        B::weight_and_scale_gradient(x, weight.clone(), g, &geometry, &fold);
                    (Some(dw), Some(DScale::Weights(ds)))
                }
                (Some(x), true) => (
                    Some(B::conv_weight_gradient(x, weight.clone(), g, &geometry)),
                    None,
                ),
                _ => (None, None),
            };
            let d_scale = d_scale.or(output_products.map(DScale::OutputProducts));
            if let Some(g) = g_for_dx {
                dx = input_gradient(weight, g);
            }
            if let Some((id, dx)) = dx {
                grads.register::<B>(id, dx);
            }
            if let (Some(node), Some(d_weight)) = (node_weight, d_weight) {
                grads.register::<B>(node.id, d_weight);
            }
            // `d_scale` is already `None` unless gamma needs a gradient (both sources above).
            let g = B::fold_gradients(&fold, d_scale, d_bias_folded, node_bias.is_some());
            register_bn_grads::<B>(grads, bn_nodes, g);
            return;
        }

        // Weight side: refold W' = W * s and scale dW' back.
        let sums = if needs_bias_grad {
            Sums::Gradient
        } else {
            Sums::Nothing
        };
        let ActivationGradient {
            grad,
            sums: d_bias_folded,
            ..
        } = B::activation_gradient(grad, kept, activation, None, sums);
        let folded = bn.map(|bn| fold_primitives_with::<B>(weight.clone(), bn, B::scale_weight));
        let effective_weight = folded
            .as_ref()
            .map_or_else(|| weight.clone(), |f| f.weight.clone());
        if let Some(node) = node_x {
            let dx =
                B::conv_input_gradient(x_shape, effective_weight.clone(), grad.clone(), &geometry);
            grads.register::<B>(node.id, dx);
        }
        let mut d_scale = None;
        if let (Some(x), true) = (x, needs_weight_grad) {
            let d_weight_folded = B::conv_weight_gradient(x, effective_weight, grad, &geometry);
            let d_weight = match &folded {
                Some(f) => {
                    let (d_weight, ds) =
                        B::scale_weight_backward(d_weight_folded, weight, f.vectors.scale.clone());
                    d_scale = Some(DScale::Weights(ds));
                    d_weight
                }
                None => d_weight_folded,
            };
            if let Some(node) = node_weight {
                grads.register::<B>(node.id, d_weight);
            }
        }
        let Some(d_bias_folded) = d_bias_folded else {
            return;
        };
        match &folded {
            Some(f) => {
                let d_scale = d_scale.filter(|_| node_gamma.is_some());
                let g = B::bn_gradients(&f.vectors, d_scale, d_bias_folded, node_bias.is_some());
                register_bn_grads::<B>(grads, bn_nodes, g);
            }
            None => {
                if let Some(node) = node_bias {
                    grads.register::<B>(node.id, d_bias_folded);
                }
            }
        }
    }
}

/// Register the gradients of the conv bias, gamma and beta ([`FusedKernels::bn_gradients`]).
fn register_bn_grads<B: FusedKernels>(
    grads: &mut Gradients,
    [bias, gamma, beta]: [Option<NodeId>; 3],
    g: BnGradients<B>,
) {
    if let (Some(id), Some(d_gamma)) = (gamma, g.gamma) {
        grads.register::<B>(id, d_gamma);
    }
    if let (Some(id), Some(d_bias)) = (bias, g.bias) {
        grads.register::<B>(id, d_bias);
    }
    if let Some(id) = beta {
        grads.register::<B>(id, g.beta);
    }
}

/// The inner backend's forward of a recorded op: its output from `(x, weight)` and the op's
/// BN (Tune) and geometry, lent by [`record`].
trait InnerForward<B: Backend>:
    FnOnce(FloatTensor<B>, FloatTensor<B>, Option<&BnParams<B>>, &ConvGeometry) -> FloatTensor<B>
{
}

impl<B: Backend, F> InnerForward<B> for F where
    F: FnOnce(
        FloatTensor<B>,
        FloatTensor<B>,
        Option<&BnParams<B>>,
        &ConvGeometry,
    ) -> FloatTensor<B>
{
}

/// Record the fused op on the graph with parents `guards` (`x` first, `weight` second), or run
/// it untracked. `forward` computes the inner backend's output from `(x, weight)` and the
/// op's BN and geometry, lent to it rather than cloned (the state keeps them).
#[allow(clippy::too_many_arguments)]
fn record<B: FusedKernels, C: CheckpointStrategy, const N: usize>(
    guards: [NodeGuard; N],
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    keep_x: bool,
    bn: Option<BnParams<B>>,
    geometry: ConvGeometry,
    activation: Activation,
    forward: impl InnerForward<B>,
) -> FloatTensor<Autodiff<B, C>> {
    let x_tracked = x.is_tracked();
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
            let out = forward(x.into_primitive(), weight.clone(), bn.as_ref(), &geometry);
            crate::flops::record(
                &weight.shape(),
                &out.shape(),
                usize::from(x_tracked) + usize::from(keep_x),
            );
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
            let weight = weight.into_primitive();
            let out = forward(x.into_primitive(), weight.clone(), bn.as_ref(), &geometry);
            crate::flops::record(&weight.shape(), &out.shape(), 0);
            prep.finish(out)
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
            bias: present::<B>(bias.into_primitive()),
            gamma: Some(gamma.into_primitive()),
            beta: Some(beta.into_primitive()),
            mean: running_mean.into_primitive(),
            var: running_var.into_primitive(),
            eps,
        };
        // The conv bias is part of `bn`.
        let forward = inner_forward::<B>(None, activation);
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
        let forward = inner_forward::<B>(Some(bias.into_primitive()), activation);
        record::<B, C, 3>(
            guards, x, weight, keep_x, None, geometry, activation, forward,
        )
    }

    fn conv_activation_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: ConvGeometry,
        activation: Activation,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), weight.node()];
        let keep_x = weight.is_tracked();
        let forward = inner_forward::<B>(None, activation);
        record::<B, C, 2>(
            guards, x, weight, keep_x, None, geometry, activation, forward,
        )
    }
}

/// The inner backend's forward of every fused op, given the BN that [`record`] lends it:
/// Tune's `A(conv(x, W') + b')` with the fold of that BN (its conv bias in it), `s` on the
/// output or folded into a `W'` that is dropped here; without one, `A(conv(x, weight) +
/// bias)`. Bias (or `b'`) and activation in one pass over the output where the backend has
/// that kernel.
fn inner_forward<B: TuneConvOps + FusedKernels>(
    bias: Option<FloatTensor<B>>,
    activation: Activation,
) -> impl InnerForward<B> {
    move |x, weight, bn, geometry| match (bn, B::scale_on_output()) {
        (Some(bn), true) => {
            B::fold_activation(B::conv_forward(x, weight, geometry), bn, activation)
        }
        (Some(bn), false) => {
            tune_forward::<B>(x, weight, bn.clone(), geometry, activation, B::scale_weight)
        }
        (None, true) => {
            let y = B::conv_forward(x, weight, geometry);
            B::affine_activation(y, None, bias, activation)
        }
        (None, false) => match bias {
            Some(bias) => B::conv_activation(x, weight, bias, geometry.clone(), activation),
            None => B::conv_activation_unbiased(x, weight, geometry.clone(), activation),
        },
    }
}
