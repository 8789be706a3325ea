//! The graph's trainable layers: every parameter of an imported model lives in one of these.
//!
//! Paths are `layers.<i>` in graph order (`layers.3.weight`); [`OnnxModel::layer_names`]
//! gives each layer's ONNX node name(s).
//!
//! [`OnnxModel::layer_names`]: crate::OnnxModel::layer_names

use burn::module::{Module, Param, RunningState};
use burn::nn::Linear;
use burn::tensor::Tensor;
use convbn::ConvBn2d;

/// One trainable layer of an imported graph.
// Built once per import and held in a Vec: the size of the block variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Layer {
    /// A Conv whose output only feeds a BatchNormalization: one ConvBN block (its mode is
    /// switched with [`convbn::set_mode`] like any other).
    ConvBn(ConvBn2d),
    /// A Conv with no BatchNormalization after it.
    Conv(Conv),
    /// A BatchNormalization that does not follow a Conv it can be fused with, with frozen
    /// statistics (as Eval mode): `y = (x - mean) * gamma / sqrt(var + eps) + beta`.
    Norm(Norm),
    /// A fully connected layer (ONNX `Gemm`, or `MatMul` + `Add`), burn's `[in, out]` weight.
    Linear(Linear),
}

/// A 2-d convolution's parameters (its geometry is in the program step).
#[derive(Module, Debug)]
pub struct Conv {
    /// `[C_out, C_in/groups, kh, kw]`.
    pub weight: Param<Tensor<4>>,
    /// `[C_out]`, if any.
    pub bias: Option<Param<Tensor<1>>>,
}

/// A BatchNormalization that stands alone (frozen running statistics, trainable affine).
#[derive(Module, Debug)]
pub struct Norm {
    /// Scale `[C]`.
    pub gamma: Param<Tensor<1>>,
    /// Shift `[C]`.
    pub beta: Param<Tensor<1>>,
    /// Running mean `[C]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running variance `[C]`.
    pub running_var: RunningState<Tensor<1>>,
}
