//! From an ONNX graph (parsed by onnx-ir, simplification off) to a [`Program`] and its
//! trainable [`Layer`]s.
//!
//! The pairing rule is PyTorch's (`torch.fx` Conv-BN fusion): a Conv whose output is used
//! exactly once, by a BatchNormalization with constant parameters and running statistics,
//! becomes one ConvBN block. When the BN's output in turn only feeds a Relu, or a Clip to
//! `[0, 6]`, the activation joins the block ([`ConvBn::forward_activated`]), as in the zoo.
//!
//! [`ConvBn::forward_activated`]: convbn::ConvBn::forward_activated

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use burn::module::{Param, RunningState};
use burn::nn::Linear;
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use convbn::{Activation, ConvBnConfig, ConvBnTensors, Mode};
use onnx_ir::node::batch_norm::{BatchNormConfig, BatchNormalizationNode};
use onnx_ir::node::clip::ClipInput;
use onnx_ir::node::padding::{AutoPad, PaddingConfig2d};
use onnx_ir::{ArgType, Argument, Node, OnnxGraph, ValueSource};

use crate::error::{OnnxError, Result, Unsupported};
use crate::layer::{Conv, Layer, Norm};
use crate::program::{Binary, IntsArg, Op, Operand, Program, Step};

/// The ONNX operators the importer runs (onnx-ir's names: it turns `Conv` into `Conv2d`,
/// `Gemm`/`MatMul`+`Add` with constant weights into `Linear`).
pub const SUPPORTED_OPS: &[&str] = &[
    "Conv2d",
    "BatchNormalization",
    "Linear",
    "MatMul (constant 2-d weight)",
    "Relu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "LeakyRelu",
    "HardSigmoid",
    "HardSwish",
    "Softmax",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Concat",
    "Flatten",
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "MaxPool2d",
    "AveragePool2d",
    "Identity",
    "Dropout",
    "Constant",
    "Shape",
    "Gather (on shapes)",
    "Cast",
];

/// What the importer builds.
pub(crate) struct Imported {
    pub layers: Vec<Layer>,
    pub program: Program,
}

struct Builder<'g> {
    graph: &'g OnnxGraph,
    device: &'g Device,
    slots: HashMap<String, usize>,
    /// Consumers (node indices) of each value name; graph outputs count as one more use.
    uses: HashMap<String, Vec<usize>>,
    steps: Vec<Step>,
    layers: Vec<Layer>,
    layer_names: Vec<String>,
    unsupported: BTreeMap<String, Vec<String>>,
    /// Nodes already executed as part of a fused step.
    fused: Vec<bool>,
}

fn invalid(node: &str, message: impl Into<String>) -> OnnxError {
    OnnxError::Invalid {
        node: node.to_string(),
        message: message.into(),
    }
}

/// Whether an argument is a constant of the file (an initializer or a Constant node).
fn is_constant(arg: &Argument) -> bool {
    matches!(
        arg.value_source,
        ValueSource::Static(_) | ValueSource::Constant
    )
}

/// A constant argument's data as f32 with its shape.
fn float_data(node: &str, arg: &Argument) -> Result<TensorData> {
    let data = arg.value().ok_or_else(|| {
        invalid(
            node,
            format!("input '{}' must be a constant of the file", arg.name),
        )
    })?;
    if !(data.dtype().is_float() || data.dtype().is_int()) {
        return Err(invalid(
            node,
            format!("input '{}' has type {:?}", arg.name, data.dtype()),
        ));
    }
    Ok(data.convert::<f32>())
}

fn tensor<const D: usize>(node: &str, arg: &Argument, device: &Device) -> Result<Tensor<D>> {
    let data = float_data(node, arg)?;
    if data.shape().len() != D {
        return Err(invalid(
            node,
            format!(
                "'{}' has shape {:?}, expected rank {D}",
                arg.name,
                data.shape()
            ),
        ));
    }
    Ok(Tensor::from_data(data, device))
}

/// A constant of `len` values (`None`: any number) as a vector.
fn vector(node: &str, arg: &Argument, len: Option<usize>, device: &Device) -> Result<Tensor<1>> {
    let data = float_data(node, arg)?;
    let n: usize = data.shape().iter().product();
    let len = len.unwrap_or(n);
    if n != len {
        return Err(invalid(
            node,
            format!(
                "'{}' has {n} values, expected {len} (one per channel)",
                arg.name
            ),
        ));
    }
    Ok(Tensor::<1>::from_data(data, device).reshape([len]))
}

/// onnx-ir's "given in the file, or read from input k" integer settings (`ReshapeInput`,
/// `UnsqueezeConfig`, `SqueezeInput`, `SliceInput`: one shape, four types) as an [`IntsArg`].
macro_rules! ints_arg {
    ($value:expr, $kind:ident) => {
        match $value {
            $kind::Static(v) => IntsArg::Static(v.clone()),
            $kind::Runtime(r) => IntsArg::Input(r.input_index),
        }
    };
}

fn pads(padding: &PaddingConfig2d) -> [(usize, usize); 2] {
    let (top, left, bottom, right) = padding.as_tuple();
    [(top, bottom), (left, right)]
}

impl<'g> Builder<'g> {
    fn new(graph: &'g OnnxGraph, device: &'g Device) -> Self {
        let mut uses: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            for arg in node.inputs() {
                if !arg.name.is_empty() {
                    uses.entry(arg.name.clone()).or_default().push(i);
                }
            }
        }
        for out in &graph.outputs {
            uses.entry(out.name.clone()).or_default().push(usize::MAX);
        }
        Self {
            graph,
            device,
            slots: HashMap::new(),
            uses,
            steps: Vec::new(),
            layers: Vec::new(),
            layer_names: Vec::new(),
            unsupported: BTreeMap::new(),
            fused: vec![false; graph.nodes.len()],
        }
    }

    fn slot(&mut self, name: &str) -> usize {
        let next = self.slots.len();
        *self.slots.entry(name.to_string()).or_insert(next)
    }

    fn unsupported(&mut self, op: impl Into<String>, node: &str) {
        self.unsupported
            .entry(op.into())
            .or_default()
            .push(node.to_string());
    }

    /// The operand for a node input: a slot for computed values, the data for constants.
    fn operand(&mut self, arg: &Argument) -> Operand {
        if arg.is_optional() {
            return Operand::Absent;
        }
        if is_constant(arg)
            && let Some(data) = arg.value()
        {
            if data.dtype().is_float() {
                return Operand::Float(Arc::new(data));
            }
            if let Ok(v) = data.clone().convert::<i64>().try_into_vec::<i64>() {
                return Operand::Ints(v);
            }
        }
        Operand::Slot(self.slot(&arg.name))
    }

    fn push(&mut self, name: String, op: Op, inputs: &[Argument], output: &Argument) {
        let inputs = inputs.iter().map(|a| self.operand(a)).collect();
        let output = self.slot(&output.name);
        self.steps.push(Step {
            name,
            op,
            inputs,
            output,
            free: Vec::new(),
        });
    }

    fn add_layer(&mut self, layer: Layer, name: String) -> usize {
        self.layers.push(layer);
        self.layer_names.push(name);
        self.layers.len() - 1
    }

    /// The only consumer of `name`, when there is exactly one and it is a node.
    fn only_consumer(&self, name: &str) -> Option<usize> {
        match self.uses.get(name).map(Vec::as_slice) {
            Some([i]) if *i != usize::MAX => Some(*i),
            _ => None,
        }
    }

    fn build(mut self) -> Result<Imported> {
        let graph = self.graph;
        let [input] = graph.inputs.as_slice() else {
            return Err(invalid(
                "graph inputs",
                format!(
                    "convbn runs models with one image input; this one has {}",
                    graph.inputs.len()
                ),
            ));
        };
        let input_shape = match &input.ty {
            ArgType::Tensor(t) if t.dtype.is_float() && t.rank == 4 => t
                .static_shape
                .clone()
                .unwrap_or_else(|| vec![None; 4])
                .into_iter()
                // onnx-ir reads a stored -1 (some exporters' "any batch") as usize::MAX.
                .map(|d| d.filter(|&d| d != usize::MAX))
                .collect(),
            other => {
                return Err(invalid(
                    &input.name,
                    format!("the input must be a float image batch [N, C, H, W], got {other}"),
                ));
            }
        };
        let input_slot = self.slot(&input.name);
        let [output] = graph.outputs.as_slice() else {
            return Err(invalid(
                "graph outputs",
                format!(
                    "convbn runs models with one output (logits); this one has {}",
                    graph.outputs.len()
                ),
            ));
        };

        for i in 0..graph.nodes.len() {
            if !self.fused[i] {
                self.node(i)?;
            }
        }
        if !self.unsupported.is_empty() {
            let ops = std::mem::take(&mut self.unsupported)
                .into_iter()
                .map(|(op, nodes)| Unsupported { op, nodes })
                .collect();
            return Err(OnnxError::Unsupported(ops));
        }
        let output_slot = *self
            .slots
            .get(&output.name)
            .ok_or_else(|| invalid(&output.name, "no node computes the graph output"))?;
        if !self.steps.iter().any(|s| s.output == output_slot) {
            return Err(invalid(
                &output.name,
                "the graph output is not computed from the input",
            ));
        }

        // Logits: strip a final Softmax over the last axis.
        let producer = |slot: usize| self.steps.iter().rposition(|s| s.output == slot);
        let mut logits = output_slot;
        if let Some(p) = producer(output_slot)
            && let Op::Softmax { axis } = self.steps[p].op
            && let Some(Operand::Slot(src)) = self.steps[p].inputs.first()
            && matches!(&output.ty, ArgType::Tensor(t) if t.rank == axis + 1)
        {
            logits = *src;
        }
        let classifier = producer(logits).and_then(|p| match self.steps[p].op {
            Op::Linear { layer } => Some(layer),
            _ => None,
        });

        // Every value a step reads is the input or an earlier step's output; the last step
        // that reads a value frees it (never the logits or the output).
        let mut known = vec![false; self.slots.len()];
        known[input_slot] = true;
        let mut last: HashMap<usize, usize> = HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            for operand in &step.inputs {
                let Operand::Slot(s) = operand else {
                    continue;
                };
                if !known[*s] {
                    let name = self
                        .slots
                        .iter()
                        .find(|(_, v)| **v == *s)
                        .map_or("?", |(k, _)| k);
                    return Err(invalid(
                        &step.name,
                        format!("input '{name}' is neither computed before it nor a constant"),
                    ));
                }
                last.insert(*s, i);
            }
            known[step.output] = true;
        }
        for (slot, i) in last {
            if slot != logits && slot != output_slot {
                self.steps[i].free.push(slot);
            }
        }
        Ok(Imported {
            layers: self.layers,
            program: Program {
                steps: self.steps,
                slots: self.slots.len(),
                input: (input_slot, input.name.clone(), input_shape),
                output: (output_slot, output.name.clone()),
                logits,
                classifier,
                layer_names: self.layer_names,
            },
        })
    }

    fn node(&mut self, i: usize) -> Result<()> {
        let graph = self.graph;
        let node = &graph.nodes[i];
        let name = node.name().to_string();
        let ins = node.inputs();
        let Some(out) = node.outputs().first() else {
            return Ok(());
        };
        // Extra outputs (Dropout's mask) must be unused.
        if node
            .outputs()
            .iter()
            .skip(1)
            .any(|o| self.uses.contains_key(&o.name))
        {
            self.unsupported(
                format!("{:?} with a second output in use", node.node_type()),
                &name,
            );
            return Ok(());
        }
        let op = match node {
            Node::Constant(_) => return Ok(()), // read where used
            Node::Conv2d(conv) => return self.conv(conv),
            Node::BatchNormalization(_) => return self.norm(i),
            Node::Linear(linear) => {
                return self.linear(&name, ins, out, linear.config.transpose_weight);
            }
            Node::MatMul(_) if ins.len() == 2 && is_constant(&ins[1]) => {
                return self.linear(&name, &ins[..2], out, false);
            }
            Node::Relu(_) => Op::Relu,
            Node::Sigmoid(_) => Op::Sigmoid,
            Node::Tanh(_) => Op::Tanh,
            Node::LeakyRelu(n) => Op::LeakyRelu(n.config.alpha),
            Node::HardSigmoid(n) => Op::HardSigmoid {
                alpha: n.config.alpha,
                beta: n.config.beta,
            },
            Node::HardSwish(_) => Op::HardSwish,
            Node::Clip(n) => {
                let (min, max) = (
                    clip_bound(ins, &n.config.min),
                    clip_bound(ins, &n.config.max),
                );
                let (Some(min), Some(max)) = (min, max) else {
                    self.unsupported("Clip with bounds computed at run time", &name);
                    return Ok(());
                };
                Op::Clip { min, max }
            }
            Node::Identity(_) | Node::Dropout(_) => {
                self.push(name, Op::Identity, &ins[..1], out);
                return Ok(());
            }
            Node::Softmax(n) => Op::Softmax {
                axis: n.config.axis,
            },
            Node::Flatten(n) => Op::Flatten {
                axis: n.config.axis,
            },
            Node::GlobalAveragePool(_) => Op::GlobalAveragePool,
            Node::GlobalMaxPool(_) => Op::GlobalMaxPool,
            Node::MaxPool2d(n) => {
                let c = &n.config;
                if !matches!(c.auto_pad, AutoPad::NotSet | AutoPad::Valid) {
                    self.unsupported(format!("MaxPool2d with auto_pad {:?}", c.auto_pad), &name);
                    return Ok(());
                }
                Op::MaxPool2d(MaxPoolOptions {
                    kernel_size: c.kernel_size,
                    stride: c.strides,
                    padding: pads(&c.padding),
                    dilation: c.dilation,
                    ceil_mode: c.ceil_mode,
                })
            }
            Node::AveragePool2d(n) => {
                let c = &n.config;
                if !matches!(c.auto_pad, AutoPad::NotSet | AutoPad::Valid) || c.dilation != [1, 1] {
                    self.unsupported("AveragePool2d with auto_pad or dilation", &name);
                    return Ok(());
                }
                Op::AvgPool2d(AvgPoolOptions {
                    kernel_size: c.kernel_size,
                    stride: c.strides,
                    padding: pads(&c.padding),
                    count_include_pad: c.count_include_pad,
                    ceil_mode: c.ceil_mode,
                })
            }
            Node::Add(_) => Op::Binary(Binary::Add),
            Node::Sub(_) => Op::Binary(Binary::Sub),
            Node::Mul(_) => Op::Binary(Binary::Mul),
            Node::Div(_) => Op::Binary(Binary::Div),
            Node::Concat(n) => Op::Concat {
                axis: n.config.axis,
            },
            Node::Reshape(n) => {
                use onnx_ir::node::reshape::ReshapeInput;
                Op::Reshape {
                    shape: ints_arg!(&n.config.shape, ReshapeInput),
                    allow_zero: false,
                }
            }
            Node::Shape(n) => Op::Shape {
                start: n.config.start,
                end: n.config.end,
            },
            Node::Gather(n) => Op::Gather {
                axis: n.config.axis,
            },
            Node::Unsqueeze(n) => {
                use onnx_ir::node::unsqueeze::UnsqueezeConfig;
                Op::Unsqueeze {
                    axes: ints_arg!(&n.config, UnsqueezeConfig),
                }
            }
            Node::Squeeze(n) => {
                use onnx_ir::node::squeeze::SqueezeInput;
                Op::Squeeze {
                    axes: n.config.axes.as_ref().map(|a| ints_arg!(a, SqueezeInput)),
                }
            }
            Node::Slice(n) => {
                use onnx_ir::node::slice::SliceInput;
                let arg = |s: &SliceInput| ints_arg!(s, SliceInput);
                Op::Slice {
                    starts: arg(&n.config.starts),
                    ends: arg(&n.config.ends),
                    axes: n.config.axes.as_ref().map(arg),
                    steps: n.config.steps.as_ref().map(arg),
                }
            }
            Node::Cast(n) => Op::Cast {
                to_float: n.config.to.is_float(),
            },
            Node::Transpose(n) => {
                let rank = n.config.perm.len() as i64;
                let perm: Option<Vec<usize>> = n
                    .config
                    .perm
                    .iter()
                    .map(|&p| {
                        let p = if p < 0 { p + rank } else { p };
                        (0..rank).contains(&p).then_some(p as usize)
                    })
                    .collect();
                match perm {
                    Some(perm) => Op::Transpose { perm },
                    None => {
                        self.unsupported("Transpose with an invalid permutation", &name);
                        return Ok(());
                    }
                }
            }
            Node::Custom(c) => {
                self.unsupported(format!("{}::{}", c.domain, c.op_type), &name);
                return Ok(());
            }
            other => {
                self.unsupported(format!("{:?}", other.node_type()), &name);
                return Ok(());
            }
        };
        self.push(name, op, ins, out);
        Ok(())
    }

    fn conv(&mut self, conv: &onnx_ir::node::conv2d::Conv2dNode) -> Result<()> {
        let graph = self.graph;
        let name = conv.name.clone();
        let c = &conv.config;
        if !matches!(c.auto_pad, AutoPad::NotSet | AutoPad::Valid) {
            self.unsupported(format!("Conv2d with auto_pad {:?}", c.auto_pad), &name);
            return Ok(());
        }
        let (Some(x), Some(w)) = (conv.inputs.first(), conv.inputs.get(1)) else {
            return Err(invalid(&name, "Conv needs an input and a weight"));
        };
        if !is_constant(w)
            || conv
                .inputs
                .get(2)
                .is_some_and(|b| !b.is_optional() && !is_constant(b))
        {
            self.unsupported("Conv2d with weights computed at run time", &name);
            return Ok(());
        }
        let weight: Tensor<4> = tensor(&name, w, self.device)?;
        let [cout, per_group, kh, kw] = weight.dims();
        let bias = match conv.inputs.get(2).filter(|b| !b.is_optional()) {
            Some(b) => Some(vector(&name, b, Some(cout), self.device)?),
            None => None,
        };
        if c.groups == 0 || cout % c.groups != 0 || per_group == 0 {
            return Err(invalid(
                &name,
                format!(
                    "{cout} output channels do not split into {} groups",
                    c.groups
                ),
            ));
        }
        let out = &conv.outputs[0];
        let padding = pads(&c.padding);

        // Conv -> BatchNormalization with constants, the conv output used only there.
        let bn = self
            .only_consumer(&out.name)
            .and_then(|j| match &graph.nodes[j] {
                Node::BatchNormalization(bn)
                    if bn.inputs.first().is_some_and(|a| a.name == out.name)
                        && has_constant_parameters(bn) =>
                {
                    Some((j, bn))
                }
                _ => None,
            });
        let Some((j, bn)) = bn else {
            let layer = self.add_layer(
                Layer::Conv(Conv {
                    weight: Param::from_tensor(weight),
                    bias: bias.map(Param::from_tensor),
                }),
                name.clone(),
            );
            let options = ConvOptions {
                stride: c.stride,
                padding,
                dilation: c.dilation,
                groups: c.groups,
            };
            self.push(name, Op::Conv { layer, options }, &conv.inputs[..1], out);
            return Ok(());
        };
        let (eps, momentum) = bn_settings(bn);
        let bn_name = format!("{name}+{}", bn.name);
        let [gamma, beta, running_mean, running_var] = bn_parameters(bn, Some(cout), self.device)?;
        let tensors = ConvBnTensors {
            weight,
            bias,
            gamma: Some(gamma),
            beta: Some(beta),
            running_mean,
            running_var,
        };
        let config = ConvBnConfig::new(per_group * c.groups, cout, [kh, kw])
            .with_stride([c.stride[0], c.stride[1]])
            .with_padding_pairs(padding.to_vec())
            .with_dilation([c.dilation[0], c.dilation[1]])
            .with_groups(c.groups)
            .with_bias(tensors.bias.is_some())
            .with_eps(eps)
            // ONNX: new = momentum * old + (1 - momentum) * batch; ours is PyTorch's.
            .with_momentum((1.0 - momentum).clamp(0.0, 1.0))
            .with_mode(Mode::Eval);
        let block = config
            .init_with(tensors)
            .map_err(|source| OnnxError::Block {
                node: bn_name.clone(),
                source,
            })?;
        self.fused[j] = true;
        let mut step_name = bn_name.clone();
        let mut last = &bn.outputs[0];
        let mut activation = Activation::Identity;
        if let Some(k) = self.only_consumer(&last.name) {
            let act = match &graph.nodes[k] {
                Node::Relu(_) => Some(Activation::Relu),
                Node::Clip(clip) if is_relu6(clip) => Some(Activation::Relu6),
                _ => None,
            };
            if let Some(act) = act {
                self.fused[k] = true;
                activation = act;
                step_name = format!("{step_name}+{}", graph.nodes[k].name());
                last = &graph.nodes[k].outputs()[0];
            }
        }
        let layer = self.add_layer(Layer::ConvBn(block), bn_name);
        self.push(
            step_name,
            Op::ConvBn { layer, activation },
            std::slice::from_ref(x),
            last,
        );
        Ok(())
    }

    /// A BatchNormalization not fused with a Conv.
    fn norm(&mut self, i: usize) -> Result<()> {
        let Node::BatchNormalization(bn) = &self.graph.nodes[i] else {
            unreachable!()
        };
        let name = bn.name.clone();
        if !has_constant_parameters(bn) {
            self.unsupported(
                "BatchNormalization with parameters computed at run time",
                &name,
            );
            return Ok(());
        }
        let (eps, _) = bn_settings(bn);
        let [gamma, beta, running_mean, running_var] = bn_parameters(bn, None, self.device)?;
        let norm = Norm {
            gamma: Param::from_tensor(gamma),
            beta: Param::from_tensor(beta),
            running_mean: RunningState::new(running_mean),
            running_var: RunningState::new(running_var),
        };
        let layer = self.add_layer(Layer::Norm(norm), name.clone());
        self.push(
            name,
            Op::Norm { layer, eps },
            &bn.inputs[..1],
            &bn.outputs[0],
        );
        Ok(())
    }

    /// `Linear` (onnx-ir's Gemm / MatMul+Add) or MatMul with a constant weight.
    fn linear(
        &mut self,
        name: &str,
        ins: &[Argument],
        out: &Argument,
        transpose: bool,
    ) -> Result<()> {
        let Some(w) = ins.get(1).filter(|w| is_constant(w)) else {
            self.unsupported("Linear with weights computed at run time", name);
            return Ok(());
        };
        let mut weight: Tensor<2> = tensor(name, w, self.device)?;
        if transpose {
            weight = weight.transpose();
        }
        let [_, d_out] = weight.dims();
        let bias = match ins.get(2).filter(|b| !b.is_optional()) {
            Some(b) if is_constant(b) => Some(vector(name, b, Some(d_out), self.device)?),
            Some(_) => {
                self.unsupported("Linear with a bias computed at run time", name);
                return Ok(());
            }
            None => None,
        };
        let layer = self.add_layer(
            Layer::Linear(Linear {
                weight: Param::from_tensor(weight),
                bias: bias.map(Param::from_tensor),
            }),
            name.to_string(),
        );
        self.push(name.to_string(), Op::Linear { layer }, &ins[..1], out);
        Ok(())
    }
}

/// Whether a BatchNormalization's scale, shift, mean and variance are all constants.
fn has_constant_parameters(bn: &BatchNormalizationNode) -> bool {
    bn.inputs.len() == 5 && bn.inputs[1..].iter().all(is_constant)
}

/// A BatchNormalization's `(epsilon, momentum)` (ONNX's momentum convention).
fn bn_settings(bn: &BatchNormalizationNode) -> (f64, f64) {
    match &bn.config {
        BatchNormConfig::Static(s) => (s.epsilon, s.momentum),
        BatchNormConfig::Runtime(s) => (s.epsilon, s.momentum),
    }
}

/// A BatchNormalization's constant `[gamma, beta, mean, var]`, `len` values each (`None`: as
/// many as gamma has).
fn bn_parameters(
    bn: &BatchNormalizationNode,
    len: Option<usize>,
    device: &Device,
) -> Result<[Tensor<1>; 4]> {
    let gamma = vector(&bn.name, &bn.inputs[1], len, device)?;
    let len = Some(gamma.dims()[0]);
    Ok([
        gamma,
        vector(&bn.name, &bn.inputs[2], len, device)?,
        vector(&bn.name, &bn.inputs[3], len, device)?,
        vector(&bn.name, &bn.inputs[4], len, device)?,
    ])
}

/// A Clip bound: `Some(None)` when absent, `Some(Some(v))` when constant, `None` when the
/// graph computes it at run time.
fn clip_bound(inputs: &[Argument], bound: &Option<ClipInput>) -> Option<Option<f64>> {
    match bound {
        None => Some(None),
        Some(ClipInput::Static(v)) => Some(Some(*v)),
        Some(ClipInput::Runtime(r)) => inputs
            .get(r.input_index)
            .and_then(|a| a.value())
            .and_then(|d| d.convert::<f64>().try_into_vec::<f64>().ok())
            .and_then(|v| v.first().copied())
            .map(Some),
    }
}

/// A Clip to `[0, 6]` with constant bounds (ReLU6).
fn is_relu6(clip: &onnx_ir::node::clip::ClipNode) -> bool {
    clip_bound(&clip.inputs, &clip.config.min) == Some(Some(0.0))
        && clip_bound(&clip.inputs, &clip.config.max) == Some(Some(6.0))
}

/// Build the program and layers of a parsed graph on `device`.
pub(crate) fn import_graph(graph: &OnnxGraph, device: &Device) -> Result<Imported> {
    Builder::new(graph, device).build()
}
