//! The graph as a program: one [`Step`] per executed node, over numbered value slots, and the
//! interpreter that runs it on burn tensors (so autodiff records every op).

use std::sync::Arc;

use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Tensor, TensorData, activation};
use convbn::Activation;

use crate::error::{OnnxError, Result};
use crate::layer::Layer;
use crate::value::{Float, MAX_RANK, Value, padded};

/// Where a step's input comes from.
#[derive(Clone, Debug)]
pub(crate) enum Operand {
    /// A value computed while running (a graph input or a step's output).
    Slot(usize),
    /// A float constant of the file (put on the input's device at each run).
    Float(Arc<TensorData>),
    /// An integer constant of the file.
    Ints(Vec<i64>),
    /// An optional input the node was not given.
    Absent,
}

/// Integers given as an attribute or by one of the node's inputs.
#[derive(Clone, Debug)]
pub(crate) enum IntsArg {
    Static(Vec<i64>),
    Input(usize),
}

/// Element-wise binary operators (numpy broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

/// What a step computes.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// A fused Conv -> BatchNormalization (-> activation): `layers[layer]` is a ConvBN block.
    ConvBn {
        layer: usize,
        activation: Activation,
    },
    /// A plain convolution.
    Conv {
        layer: usize,
        options: ConvOptions<2>,
    },
    /// A stand-alone BatchNormalization (frozen statistics).
    Norm {
        layer: usize,
        eps: f64,
    },
    /// `x W + b` over the last axis.
    Linear {
        layer: usize,
    },
    Relu,
    Sigmoid,
    Tanh,
    LeakyRelu(f64),
    /// `clamp(alpha x + beta, 0, 1)`.
    HardSigmoid {
        alpha: f64,
        beta: f64,
    },
    /// `x * clamp(x / 6 + 1/2, 0, 1)`.
    HardSwish,
    Clip {
        min: Option<f64>,
        max: Option<f64>,
    },
    Identity,
    Softmax {
        axis: usize,
    },
    Flatten {
        axis: usize,
    },
    GlobalAveragePool,
    GlobalMaxPool,
    MaxPool2d(MaxPoolOptions<2>),
    AvgPool2d(AvgPoolOptions<2>),
    Binary(Binary),
    Concat {
        axis: usize,
    },
    Reshape {
        shape: IntsArg,
        allow_zero: bool,
    },
    Shape {
        start: usize,
        end: usize,
    },
    Gather {
        axis: usize,
    },
    Unsqueeze {
        axes: IntsArg,
    },
    Squeeze {
        axes: Option<IntsArg>,
    },
    Slice {
        starts: IntsArg,
        ends: IntsArg,
        axes: Option<IntsArg>,
        steps: Option<IntsArg>,
    },
    /// To a float type (`to_float`) or an integer type.
    Cast {
        to_float: bool,
    },
    Transpose {
        perm: Vec<usize>,
    },
}

/// One executed node.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    /// The ONNX node name(s) (`conv2d3+batchnormalization3+relu3` for fused nodes).
    pub name: String,
    pub op: Op,
    pub inputs: Vec<Operand>,
    /// Slot of the (only used) output.
    pub output: usize,
    /// Slots no later step reads: dropped after this step, so that a run keeps no more than
    /// autodiff does.
    pub free: Vec<usize>,
}

/// The whole graph.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    pub steps: Vec<Step>,
    pub slots: usize,
    /// The graph's image input: its slot, name and static shape (`None` where symbolic).
    pub input: (usize, String, Vec<Option<usize>>),
    /// The graph's output slot and name.
    pub output: (usize, String),
    /// The slot of the logits: the output, or the input of a final Softmax over classes.
    pub logits: usize,
    /// The layer holding the classifier (the Linear producing the logits), if any.
    pub classifier: Option<usize>,
    /// Each layer's ONNX node name(s).
    pub layer_names: Vec<String>,
}

impl Program {
    /// Run the graph on `x` and return the value of `slot`.
    pub fn run(&self, layers: &[Layer], x: Float, slot: usize) -> Result<Float> {
        let device = x.tensor.device();
        let mut slots: Vec<Option<Value>> = vec![None; self.slots];
        slots[self.input.0] = Some(Value::Float(x));
        for step in &self.steps {
            let inputs = step
                .inputs
                .iter()
                .map(|operand| match operand {
                    Operand::Slot(s) => slots[*s].clone(),
                    Operand::Float(data) => Some(Value::Float(Float::from_data(data, &device))),
                    Operand::Ints(v) => Some(Value::Ints(v.clone())),
                    Operand::Absent => None,
                })
                .collect::<Vec<_>>();
            let value = execute(step, layers, inputs)?;
            if step.output == slot {
                return as_float(step, value);
            }
            for s in &step.free {
                slots[*s] = None;
            }
            slots[step.output] = Some(value);
        }
        match slots[slot].take() {
            Some(Value::Float(f)) => Ok(f),
            _ => Err(OnnxError::Invalid {
                node: self.output.1.clone(),
                message: "the graph output is not a float tensor computed from the input".into(),
            }),
        }
    }
}

fn as_float(step: &Step, value: Value) -> Result<Float> {
    match value {
        Value::Float(f) => Ok(f),
        Value::Ints(_) => Err(run_error(
            step,
            "the output is integers, not a float tensor",
        )),
    }
}

fn run_error(step: &Step, message: impl Into<String>) -> OnnxError {
    OnnxError::Run {
        node: step.name.clone(),
        message: message.into(),
    }
}

/// Input `i` as a float tensor.
fn float(step: &Step, inputs: &[Option<Value>], i: usize) -> Result<Float> {
    match inputs.get(i) {
        Some(Some(Value::Float(f))) => Ok(f.clone()),
        Some(Some(Value::Ints(v))) => {
            // Integer constants used as numbers (e.g. `x * 2`).
            let data = TensorData::new(v.iter().map(|&x| x as f32).collect(), [v.len()]);
            let device = inputs
                .iter()
                .find_map(|v| match v {
                    Some(Value::Float(f)) => Some(f.tensor.device()),
                    _ => None,
                })
                .ok_or_else(|| run_error(step, "integer arithmetic is not supported"))?;
            Ok(Float::new(Tensor::<1>::from_data(data, &device)))
        }
        _ => Err(run_error(step, format!("input {i} is missing"))),
    }
}

/// Input `i` as host integers.
fn ints(step: &Step, inputs: &[Option<Value>], i: usize) -> Result<Vec<i64>> {
    match inputs.get(i) {
        Some(Some(Value::Ints(v))) => Ok(v.clone()),
        Some(Some(Value::Float(f))) if f.rank <= 1 && f.dims().iter().product::<usize>() <= 64 => {
            // Float shape arithmetic (rare): read back the few values.
            let data = f.tensor.clone().into_data();
            let values = data
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| run_error(step, format!("{e:?}")))?;
            Ok(values.into_iter().map(|x| x as i64).collect())
        }
        _ => Err(run_error(
            step,
            format!("input {i} must be integers known on the host"),
        )),
    }
}

fn ints_arg(step: &Step, inputs: &[Option<Value>], arg: &IntsArg) -> Result<Vec<i64>> {
    match arg {
        IntsArg::Static(v) => Ok(v.clone()),
        IntsArg::Input(i) => ints(step, inputs, *i),
    }
}

/// An ONNX axis (possibly negative) of a rank-`rank` value.
fn axis(step: &Step, axis: i64, rank: usize) -> Result<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a as usize >= rank.max(1) {
        return Err(run_error(
            step,
            format!("axis {axis} is out of range for rank {rank}"),
        ));
    }
    Ok(a as usize)
}

/// The broadcast shape of two ONNX shapes (numpy rules), if they broadcast.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let (pa, pb) = (padded_to(a, rank), padded_to(b, rank));
    pa.iter()
        .zip(&pb)
        .map(|(&x, &y)| match (x, y) {
            _ if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

fn padded_to(dims: &[usize], rank: usize) -> Vec<usize> {
    let mut out = vec![1; rank - dims.len()];
    out.extend_from_slice(dims);
    out
}

fn need_rank(step: &Step, x: &Float, rank: usize) -> Result<()> {
    if x.rank != rank {
        return Err(run_error(
            step,
            format!("expects a rank-{rank} tensor, got shape {:?}", x.dims()),
        ));
    }
    Ok(())
}

/// The output extent of a pooled or convolved axis (floor or ceil mode).
fn pooled(
    len: usize,
    kernel: usize,
    stride: usize,
    pad: (usize, usize),
    dilation: usize,
    ceil: bool,
) -> Option<usize> {
    let span = dilation * (kernel - 1) + 1;
    let padded = len + pad.0 + pad.1;
    if padded < span || stride == 0 {
        return None;
    }
    let steps = padded - span;
    Some(
        if ceil {
            steps.div_ceil(stride)
        } else {
            steps / stride
        } + 1,
    )
}

/// A pooling step's input as `[N, C, H, W]`, refused when the window does not fit it.
fn pool_input(
    step: &Step,
    x: Float,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
    ceil: bool,
) -> Result<Tensor<4>> {
    need_rank(step, &x, 4)?;
    let t = x.get::<4>();
    let [_, _, h, w] = t.dims();
    for (i, len) in [h, w].into_iter().enumerate() {
        if pooled(len, kernel[i], stride[i], padding[i], dilation[i], ceil).is_none() {
            return Err(run_error(
                step,
                format!("input {:?} is smaller than the pooling window", x.dims()),
            ));
        }
    }
    Ok(t)
}

fn execute(step: &Step, layers: &[Layer], inputs: Vec<Option<Value>>) -> Result<Value> {
    let x = || float(step, &inputs, 0);
    let out = |f: Float| Ok(Value::Float(f));
    match &step.op {
        Op::ConvBn { layer, activation } => {
            let Layer::ConvBn(block) = &layers[*layer] else {
                unreachable!("the importer pairs ConvBn steps with ConvBn layers")
            };
            let x = x()?;
            need_rank(step, &x, 4)?;
            let y = block
                .forward_activated(x.get::<4>(), *activation)
                .map_err(|source| OnnxError::Block {
                    node: step.name.clone(),
                    source,
                })?;
            out(Float::new(y))
        }
        Op::Conv { layer, options } => {
            let Layer::Conv(conv) = &layers[*layer] else {
                unreachable!("the importer pairs Conv steps with Conv layers")
            };
            let x = x()?;
            need_rank(step, &x, 4)?;
            let [_, cin, h, w] = x.get::<4>().dims();
            let [_, per_group, kh, kw] = conv.weight.dims();
            let fits = cin == per_group * options.groups
                && pooled(
                    h,
                    kh,
                    options.stride[0],
                    options.padding[0],
                    options.dilation[0],
                    false,
                )
                .is_some()
                && pooled(
                    w,
                    kw,
                    options.stride[1],
                    options.padding[1],
                    options.dilation[1],
                    false,
                )
                .is_some();
            if !fits {
                return Err(run_error(
                    step,
                    format!(
                        "input {:?} does not fit a {kh}x{kw} convolution of {} input channels",
                        x.dims(),
                        per_group * options.groups
                    ),
                ));
            }
            let y = burn::tensor::module::conv2d(
                x.get::<4>(),
                conv.weight.val(),
                conv.bias.as_ref().map(|b| b.val()),
                options.clone(),
            );
            out(Float::new(y))
        }
        Op::Norm { layer, eps } => {
            let Layer::Norm(norm) = &layers[*layer] else {
                unreachable!("the importer pairs Norm steps with Norm layers")
            };
            let x = x()?;
            let c = norm.gamma.dims()[0];
            if x.rank < 2 || x.dims()[1] != c {
                return Err(run_error(
                    step,
                    format!("expects {c} channels on axis 1, got shape {:?}", x.dims()),
                ));
            }
            // Per-channel `[C]` vectors as `[1, C, 1, ...]` of the input's rank.
            let mut shape = vec![1; x.rank];
            shape[1] = c;
            let channel = |t: Tensor<1>| t.reshape(padded(&shape));
            let scale = norm.gamma.val() / (norm.running_var.value() + *eps).sqrt();
            let shift = norm.beta.val() - norm.running_mean.value() * scale.clone();
            out(x.map(|t| t * channel(scale) + channel(shift)))
        }
        Op::Linear { layer } => {
            let Layer::Linear(linear) = &layers[*layer] else {
                unreachable!("the importer pairs Linear steps with Linear layers")
            };
            let x = x()?;
            let [d_in, d_out] = linear.weight.dims();
            let dims = x.dims();
            if x.rank < 1 || dims[x.rank - 1] != d_in {
                return Err(run_error(
                    step,
                    format!("expects {d_in} features on the last axis, got shape {dims:?}"),
                ));
            }
            let rows = dims[..x.rank - 1].iter().product::<usize>();
            let y = linear.forward(x.tensor.reshape([rows, d_in]));
            let mut out_dims = dims.clone();
            out_dims[x.rank - 1] = d_out;
            out(Float::new(y).with_dims(&out_dims))
        }
        Op::Relu => out(x()?.map(activation::relu)),
        Op::Sigmoid => out(x()?.map(activation::sigmoid)),
        Op::Tanh => out(x()?.map(activation::tanh)),
        Op::LeakyRelu(slope) => out(x()?.map(|t| activation::leaky_relu(t, *slope))),
        Op::HardSigmoid { alpha, beta } => {
            out(x()?.map(|t| activation::hard_sigmoid(t, *alpha, *beta)))
        }
        Op::HardSwish => out(x()?.map(|t| t.clone() * activation::hard_sigmoid(t, 1.0 / 6.0, 0.5))),
        Op::Clip { min, max } => out(x()?.map(|t| match (min, max) {
            (Some(lo), Some(hi)) => t.clamp(*lo, *hi),
            (Some(lo), None) => t.clamp_min(*lo),
            (None, Some(hi)) => t.clamp_max(*hi),
            (None, None) => t,
        })),
        Op::Identity => inputs
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| run_error(step, "input 0 is missing")),
        Op::Softmax { axis } => {
            let x = x()?;
            let a = x.axis(*axis);
            out(x.map(|t| activation::softmax(t, a)))
        }
        Op::Flatten { axis } => {
            let x = x()?;
            let dims = x.dims();
            let a = (*axis).min(dims.len());
            let rows = dims[..a].iter().product::<usize>();
            let cols = dims[a..].iter().product::<usize>();
            out(x.with_dims(&[rows, cols]))
        }
        Op::GlobalAveragePool | Op::GlobalMaxPool => {
            let x = x()?;
            if x.rank < 3 {
                return Err(run_error(
                    step,
                    format!("expects [N, C, spatial...], got {:?}", x.dims()),
                ));
            }
            let dims = x.dims();
            let (n, c) = (dims[0], dims[1]);
            let spatial = dims[2..].iter().product::<usize>();
            let flat = x.tensor.reshape([n, c, spatial]);
            let pooled = if matches!(step.op, Op::GlobalAveragePool) {
                flat.mean_dim(2)
            } else {
                flat.max_dim(2)
            };
            let mut out_dims = vec![n, c];
            out_dims.extend(std::iter::repeat_n(1, dims.len() - 2));
            out(Float::new(pooled).with_dims(&out_dims))
        }
        Op::MaxPool2d(options) => {
            let x = pool_input(
                step,
                x()?,
                options.kernel_size,
                options.stride,
                options.padding,
                options.dilation,
                options.ceil_mode,
            )?;
            out(Float::new(burn::tensor::module::max_pool2d(
                x,
                options.clone(),
            )))
        }
        Op::AvgPool2d(options) => {
            let x = pool_input(
                step,
                x()?,
                options.kernel_size,
                options.stride,
                options.padding,
                [1, 1],
                options.ceil_mode,
            )?;
            out(Float::new(burn::tensor::module::avg_pool2d(
                x,
                options.clone(),
            )))
        }
        Op::Binary(op) => {
            let (a, b) = (x()?, float(step, &inputs, 1)?);
            let (da, db) = (a.dims(), b.dims());
            let dims = broadcast(&da, &db).ok_or_else(|| {
                run_error(step, format!("shapes {da:?} and {db:?} do not broadcast"))
            })?;
            let (ta, tb) = (a.tensor, b.tensor);
            let t = match op {
                Binary::Add => ta + tb,
                Binary::Sub => ta - tb,
                Binary::Mul => ta * tb,
                Binary::Div => ta / tb,
            };
            out(Float {
                tensor: t,
                rank: dims.len(),
            })
        }
        Op::Concat { axis } => {
            if inputs.iter().all(|v| matches!(v, Some(Value::Ints(_)))) {
                let mut all = Vec::new();
                for i in 0..inputs.len() {
                    all.extend(ints(step, &inputs, i)?);
                }
                return Ok(Value::Ints(all));
            }
            let parts = (0..inputs.len())
                .map(|i| float(step, &inputs, i))
                .collect::<Result<Vec<_>>>()?;
            let first = parts[0].dims();
            let a = (*axis).min(first.len().saturating_sub(1));
            for p in &parts {
                let d = p.dims();
                let same = d.len() == first.len()
                    && d.iter()
                        .zip(&first)
                        .enumerate()
                        .all(|(i, (x, y))| i == a || x == y);
                if !same {
                    return Err(run_error(
                        step,
                        format!("cannot concatenate {d:?} with {first:?} on axis {a}"),
                    ));
                }
            }
            let rank = parts[0].rank;
            let burn_axis = parts[0].axis(a);
            let t = Tensor::cat(parts.into_iter().map(|p| p.tensor).collect(), burn_axis);
            out(Float { tensor: t, rank })
        }
        Op::Reshape { shape, allow_zero } => {
            let x = x()?;
            let target = ints_arg(step, &inputs, shape)?;
            let dims =
                reshape_dims(&x.dims(), &target, *allow_zero).map_err(|m| run_error(step, m))?;
            out(x.with_dims(&dims))
        }
        Op::Shape { start, end } => {
            let dims = match &inputs[0] {
                Some(Value::Float(f)) => f.dims(),
                Some(Value::Ints(v)) => vec![v.len()],
                None => return Err(run_error(step, "input 0 is missing")),
            };
            let (s, e) = ((*start).min(dims.len()), (*end).min(dims.len()));
            Ok(Value::Ints(
                dims[s..e.max(s)].iter().map(|&d| d as i64).collect(),
            ))
        }
        Op::Gather { axis: a } => {
            let data = ints(step, &inputs, 0)?;
            let index = ints(step, &inputs, 1)?;
            if *a != 0 {
                return Err(run_error(step, "Gather on integers runs on axis 0 only"));
            }
            let picked = index
                .iter()
                .map(|&i| {
                    let j = if i < 0 { i + data.len() as i64 } else { i };
                    data.get(j as usize).copied().ok_or_else(|| {
                        run_error(
                            step,
                            format!("index {i} is out of range for {} values", data.len()),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Value::Ints(picked))
        }
        Op::Unsqueeze { axes } => {
            let axes = ints_arg(step, &inputs, axes)?;
            match &inputs[0] {
                Some(Value::Ints(v)) => Ok(Value::Ints(v.clone())),
                _ => {
                    let x = x()?;
                    let rank = x.rank + axes.len();
                    if rank > MAX_RANK {
                        return Err(run_error(step, format!("rank {rank} is above {MAX_RANK}")));
                    }
                    let mut positions = axes
                        .iter()
                        .map(|&a| axis(step, a, rank))
                        .collect::<Result<Vec<_>>>()?;
                    positions.sort_unstable();
                    let mut src = x.dims().into_iter();
                    let dims: Vec<usize> = (0..rank)
                        .map(|i| {
                            if positions.contains(&i) {
                                1
                            } else {
                                src.next().unwrap_or(1)
                            }
                        })
                        .collect();
                    out(x.with_dims(&dims))
                }
            }
        }
        Op::Squeeze { axes } => {
            let x = x()?;
            let dims = x.dims();
            let drop: Vec<usize> = match axes {
                Some(arg) => ints_arg(step, &inputs, arg)?
                    .into_iter()
                    .map(|a| axis(step, a, dims.len()))
                    .collect::<Result<_>>()?,
                None => (0..dims.len()).filter(|&i| dims[i] == 1).collect(),
            };
            if let Some(&bad) = drop.iter().find(|&&i| dims[i] != 1) {
                return Err(run_error(step, format!("axis {bad} of {dims:?} is not 1")));
            }
            let kept: Vec<usize> = (0..dims.len())
                .filter(|i| !drop.contains(i))
                .map(|i| dims[i])
                .collect();
            out(x.with_dims(&kept))
        }
        Op::Slice {
            starts,
            ends,
            axes,
            steps,
        } => {
            let starts = ints_arg(step, &inputs, starts)?;
            let ends = ints_arg(step, &inputs, ends)?;
            let axes = axes
                .as_ref()
                .map(|a| ints_arg(step, &inputs, a))
                .transpose()?;
            let steps = steps
                .as_ref()
                .map(|a| ints_arg(step, &inputs, a))
                .transpose()?;
            if steps.as_ref().is_some_and(|s| s.iter().any(|&s| s != 1)) {
                return Err(run_error(
                    step,
                    "Slice with steps other than 1 is not supported",
                ));
            }
            let (dims, int_values) = match &inputs[0] {
                Some(Value::Ints(v)) => (vec![v.len()], Some(v.clone())),
                Some(Value::Float(f)) => (f.dims(), None),
                None => return Err(run_error(step, "input 0 is missing")),
            };
            let axes: Vec<usize> = match axes {
                Some(a) => a
                    .into_iter()
                    .map(|a| axis(step, a, dims.len()))
                    .collect::<Result<_>>()?,
                None => (0..starts.len()).collect(),
            };
            let mut ranges: Vec<(usize, usize)> = dims.iter().map(|&d| (0, d)).collect();
            for ((&a, &s), &e) in axes.iter().zip(&starts).zip(&ends) {
                let len = dims[a] as i64;
                let clamp = |v: i64| (if v < 0 { v + len } else { v }).clamp(0, len) as usize;
                let (s, e) = (clamp(s), clamp(e));
                ranges[a] = (s, e.max(s));
            }
            match int_values {
                Some(v) => Ok(Value::Ints(v[ranges[0].0..ranges[0].1].to_vec())),
                None => {
                    let x = x()?;
                    let offset = MAX_RANK - x.rank;
                    let mut t = x.tensor;
                    for (a, (s, e)) in ranges.iter().enumerate() {
                        if (*s, *e) != (0, dims[a]) {
                            t = t.narrow(a + offset, *s, e - s);
                        }
                    }
                    out(Float {
                        tensor: t,
                        rank: x.rank,
                    })
                }
            }
        }
        Op::Cast { to_float } => match (&inputs[0], to_float) {
            (Some(Value::Ints(v)), false) => Ok(Value::Ints(v.clone())),
            (Some(Value::Float(f)), true) => Ok(Value::Float(f.clone())),
            (Some(Value::Ints(_)), true) => out(float(step, &inputs, 0)?),
            (Some(Value::Float(_)), false) => Ok(Value::Ints(ints(step, &inputs, 0)?)),
            (None, _) => Err(run_error(step, "input 0 is missing")),
        },
        Op::Transpose { perm } => {
            let x = x()?;
            if perm.len() != x.rank {
                return Err(run_error(
                    step,
                    format!("permutation {perm:?} does not fit shape {:?}", x.dims()),
                ));
            }
            let offset = MAX_RANK - x.rank;
            let mut full = [0usize; MAX_RANK];
            for (i, slot) in full.iter_mut().enumerate() {
                *slot = if i < offset {
                    i
                } else {
                    perm[i - offset] + offset
                };
            }
            out(x.map(|t| t.permute(full)))
        }
    }
}

/// ONNX Reshape's target shape: `0` copies the input's extent (unless `allow_zero`), one
/// `-1` takes what is left.
fn reshape_dims(
    input: &[usize],
    target: &[i64],
    allow_zero: bool,
) -> std::result::Result<Vec<usize>, String> {
    let total: usize = input.iter().product();
    if target.len() > MAX_RANK {
        return Err(format!("rank {} is above {MAX_RANK}", target.len()));
    }
    let mut dims = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            0 if !allow_zero => dims.push(*input.get(i).ok_or("0 refers to a missing axis")?),
            t if t >= 0 => dims.push(t as usize),
            _ => return Err(format!("invalid target shape {target:?}")),
        }
    }
    let known: usize = dims.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} to {target:?}"));
        }
        dims[i] = total / known;
    } else if known != total {
        return Err(format!(
            "cannot reshape {input:?} ({total} values) to {target:?}"
        ));
    }
    Ok(dims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_follows_onnx_rules() {
        assert_eq!(
            reshape_dims(&[2, 3, 4], &[0, -1], false).unwrap(),
            vec![2, 12]
        );
        assert_eq!(
            reshape_dims(&[2, 3, 4], &[-1, 4], false).unwrap(),
            vec![6, 4]
        );
        assert_eq!(reshape_dims(&[2, 3, 4], &[24], false).unwrap(), vec![24]);
        assert!(reshape_dims(&[2, 3, 4], &[5, -1], false).is_err());
        assert!(reshape_dims(&[2, 3, 4], &[-1, -1], false).is_err());
        assert!(reshape_dims(&[2, 3, 4], &[7], false).is_err());
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast(&[2, 8, 4, 4], &[8, 1, 1]), Some(vec![2, 8, 4, 4]));
        assert_eq!(broadcast(&[2, 8, 4, 4], &[]), Some(vec![2, 8, 4, 4]));
        assert_eq!(broadcast(&[2, 8, 4, 4], &[3, 1, 1]), None);
    }
}
