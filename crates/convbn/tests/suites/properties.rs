//! Tune == Eval, Deploy's forward and finite differences over random shapes, on whichever
//! device the calling test binary sets.

use crate::common::{device, rel_l2, values};
use burn::tensor::{Distribution, Tensor};
use convbn::{Activation, ConvBn, ConvBnConfig, ConvBnTensors, Mode, set_mode};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[derive(Clone, Debug)]
pub struct Shape {
    dims: usize,
    batch: usize,
    groups: usize,
    cin_per_group: usize,
    cout_per_group: usize,
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    bias: bool,
    affine: bool,
    eps: f64,
    activation: Activation,
}

pub fn shapes() -> impl Strategy<Value = Shape> {
    (
        1usize..=3,
        1usize..=3,
        1usize..=3,
        1usize..=3,
        1usize..=3,
        (1usize..=3, 1usize..=2, 0usize..=2, 1usize..=2),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(1e-5), Just(1e-3), Just(0.1)],
        prop_oneof![
            Just(Activation::Identity),
            Just(Activation::Relu),
            Just(Activation::Relu6)
        ],
    )
        .prop_map(
            |(
                dims,
                batch,
                groups,
                cin_per_group,
                cout_per_group,
                (kernel, stride, padding, dilation),
                bias,
                affine,
                eps,
                activation,
            )| {
                let reach = dilation * (kernel - 1) + 1;
                let size = reach + [6, 4, 2][dims - 1];
                Shape {
                    dims,
                    batch,
                    groups,
                    cin_per_group,
                    cout_per_group,
                    size,
                    kernel,
                    stride,
                    padding: padding.min(kernel - 1),
                    dilation,
                    bias,
                    affine,
                    eps,
                    activation,
                }
            },
        )
}

impl Shape {
    fn config(&self, mode: Mode) -> ConvBnConfig {
        ConvBnConfig::new(
            self.cin_per_group * self.groups,
            self.cout_per_group * self.groups,
            vec![self.kernel; self.dims],
        )
        .with_stride(self.stride)
        .with_padding(self.padding)
        .with_dilation(self.dilation)
        .with_groups(self.groups)
        .with_bias(self.bias)
        .with_affine(self.affine)
        .with_eps(self.eps)
        .with_mode(mode)
    }

    fn input_shape(&self) -> Vec<usize> {
        let mut s = vec![self.batch, self.cin_per_group * self.groups];
        s.extend(vec![self.size; self.dims]);
        s
    }
}

/// Random block tensors with non-trivial statistics; the same seed-free values are reused
/// for every mode by cloning.
fn tensors<const R: usize>(s: &Shape) -> ConvBnTensors<R> {
    let d = device();
    let c = s.cout_per_group * s.groups;
    let mut w = vec![c, s.cin_per_group];
    w.extend(vec![s.kernel; s.dims]);
    let n = |std: f64| Distribution::Normal(0.0, std);
    ConvBnTensors {
        weight: Tensor::random(w, n(0.5), &d),
        bias: s.bias.then(|| Tensor::random([c], n(0.5), &d)),
        gamma: s
            .affine
            .then(|| Tensor::random([c], Distribution::Uniform(0.2, 2.0), &d)),
        beta: s.affine.then(|| Tensor::random([c], n(0.5), &d)),
        running_mean: Tensor::random([c], n(0.5), &d),
        running_var: Tensor::random([c], Distribution::Uniform(0.0, 3.0), &d),
    }
}

fn tracked<const R: usize>(t: &ConvBnTensors<R>) -> ConvBnTensors<R> {
    let track = |v: &Option<Tensor<1>>| v.clone().map(|v| v.detach().require_grad());
    ConvBnTensors {
        weight: t.weight.clone().detach().require_grad(),
        bias: track(&t.bias),
        gamma: track(&t.gamma),
        beta: track(&t.beta),
        running_mean: t.running_mean.clone(),
        running_var: t.running_var.clone(),
    }
}

/// Output and gradients (x, weight, bias, gamma, beta; absent ones empty) for loss
/// `sum(out * r)`.
fn forward_backward<const R: usize>(
    block: &ConvBn<R>,
    x: &Tensor<R>,
    r: &Tensor<R>,
    activation: Activation,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let x = x.clone().detach().require_grad();
    let out = block
        .forward_activated(x.clone(), activation)
        .expect("forward");
    let grads = (out.clone() * r.clone()).sum().backward();
    let g1 = |p: &Option<burn::module::Param<Tensor<1>>>| {
        p.as_ref()
            .map(|p| values(&p.val().grad(&grads).expect("grad")))
            .unwrap_or_default()
    };
    let g = vec![
        values(&x.grad(&grads).expect("x grad")),
        values(&block.weight.val().grad(&grads).expect("weight grad")),
        g1(&block.bias),
        g1(&block.gamma),
        g1(&block.beta),
    ];
    (values(&out), g)
}

/// Access to one optional per-channel vector of a block's tensors.
type VectorField<const R: usize> = fn(&mut ConvBnTensors<R>) -> &mut Option<Tensor<1>>;

/// A random direction of the given shape.
fn direction<const D: usize>(shape: Vec<usize>) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device())
}

/// [`check`] at the shape's rank.
pub fn check_shape(s: &Shape) -> Result<(), TestCaseError> {
    match s.dims {
        1 => check::<3>(s),
        2 => check::<4>(s),
        _ => check::<5>(s),
    }
}

fn check<const R: usize>(s: &Shape) -> Result<(), TestCaseError> {
    let t = tensors::<R>(s);
    let x = Tensor::<R>::random(s.input_shape(), Distribution::Normal(0.0, 1.0), &device());
    let (eval, eval_out, tune_grads, r) = tune_matches_eval(s, &t, &x)?;
    check_deploy_and_finite_differences(s, &t, &x, &eval, &eval_out, &tune_grads, &r)
}

/// The Eval block, its output, Tune's gradients and the loss weights.
type Compared<const R: usize> = (ConvBn<R>, Vec<f32>, Vec<Vec<f32>>, Tensor<R>);

/// Tune == Eval: outputs and every gradient. Returns the Eval block, its output, Tune's
/// gradients and the loss weights `r` (loss `sum(out * r)`).
fn tune_matches_eval<const R: usize>(
    s: &Shape,
    t: &ConvBnTensors<R>,
    x: &Tensor<R>,
) -> Result<Compared<R>, TestCaseError> {
    let d = device();
    let eval: ConvBn<R> = s
        .config(Mode::Eval)
        .init_with(tracked(t))
        .expect("eval block");
    let tune: ConvBn<R> = s
        .config(Mode::Tune)
        .init_with(tracked(t))
        .expect("tune block");
    let out_shape = eval.forward(x.clone()).expect("forward").dims();
    let r = Tensor::<R>::random(out_shape, Distribution::Normal(0.0, 1.0), &d);

    // Tune == Eval: outputs and every gradient.
    // With an activation fused into Tune's op, Eval applies it as a separate op.
    let (eval_out, eval_grads) = forward_backward(&eval, x, &r, s.activation);
    let (tune_out, tune_grads) = forward_backward(&tune, x, &r, s.activation);
    prop_assert!(
        rel_l2(&tune_out, &eval_out) < 1e-5,
        "out: {}",
        rel_l2(&tune_out, &eval_out)
    );
    // A pre-activation within rounding of a kink (0, and 6 for ReLU6) can flip the mask
    // between two f32 computations of the same value, which moves the gradients by a whole
    // element's share (O(1/count) for the per-channel sums): compare gradients only when no
    // pre-activation is that close (the outputs are compared regardless).
    let z = values(&eval.forward(x.clone()).expect("forward"));
    let near = |v: f32, kink: f32| (v - kink).abs() < 1e-4 * (1.0 + kink);
    let near_kink = match s.activation {
        Activation::Identity => false,
        Activation::Relu => z.iter().any(|&v| near(v, 0.0)),
        Activation::Relu6 => z.iter().any(|&v| near(v, 0.0) || near(v, 6.0)),
    };
    for (i, (tg, eg)) in tune_grads.iter().zip(&eval_grads).enumerate() {
        prop_assert_eq!(tg.len(), eg.len());
        if !eg.is_empty() && !near_kink {
            let e = rel_l2(tg, eg);
            // bias, gamma and beta gradients are per-channel sums over N x spatial terms of
            // both signs, which can cancel: their f32 rounding relative to the (small) result
            // then reaches ~1e-4, so they get a looser bound. (With random seeds, one CI run
            // in this project saw gamma at 8.5e-4 on a depthwise 1x1 case: gamma's gradient
            // sums `G * (y - mean)` terms that can nearly cancel.)
            let tolerance = if i >= 2 { 5e-4 } else { 1e-4 };
            prop_assert!(
                e < tolerance,
                "gradient {} differs: rel L2 {}",
                ["x", "weight", "bias", "gamma", "beta"][i],
                e
            );
        }
    }
    Ok((eval, eval_out, tune_grads, r))
}

/// Deploy forward == Eval forward; gradients == finite differences (without activation).
fn check_deploy_and_finite_differences<const R: usize>(
    s: &Shape,
    t: &ConvBnTensors<R>,
    x: &Tensor<R>,
    eval: &ConvBn<R>,
    eval_out: &[f32],
    tune_grads: &[Vec<f32>],
    r: &Tensor<R>,
) -> Result<(), TestCaseError> {
    // Deploy forward == Eval forward.
    let mut deploy = eval.clone();
    set_mode(&mut deploy, Mode::Deploy).expect("fold");
    let deploy_out = values(
        &deploy
            .forward_activated(x.clone(), s.activation)
            .expect("forward"),
    );
    prop_assert!(
        rel_l2(&deploy_out, eval_out) < 1e-5,
        "deploy out: {}",
        rel_l2(&deploy_out, eval_out)
    );

    if s.activation != Activation::Identity {
        // Kinks make the loss piecewise: finite differences are checked without activation.
        return Ok(());
    }
    // Finite differences (without activation): the loss is linear in each of x, W, b, gamma, beta separately, so a
    // central difference along a random direction is exact up to rounding.
    let loss = |t: &ConvBnTensors<R>, x: &Tensor<R>| -> f64 {
        let b: ConvBn<R> = s.config(Mode::Tune).init_with(t.clone()).expect("block");
        let out = b.forward(x.clone()).expect("forward");
        (out * r.clone()).sum().into_scalar::<f32>() as f64
    };
    let h = 0.25f32;
    let dot = |g: &[f32], v: &[f32]| g.iter().zip(v).map(|(a, b)| (a * b) as f64).sum::<f64>();
    let scale: f64 = eval_out.iter().map(|v| v.abs() as f64).sum::<f64>() + 1.0;
    let mut checks: Vec<(&str, f64, f64)> = Vec::new();
    {
        let v: Tensor<R> = direction(x.dims().to_vec());
        let fd = (loss(t, &(x.clone() + v.clone() * h)) - loss(t, &(x.clone() - v.clone() * h)))
            / (2.0 * h as f64);
        checks.push(("x", fd, dot(&tune_grads[0], &values(&v))));
    }
    {
        let v: Tensor<R> = direction(t.weight.dims().to_vec());
        let mut plus = t.clone();
        plus.weight = t.weight.clone() + v.clone() * h;
        let mut minus = t.clone();
        minus.weight = t.weight.clone() - v.clone() * h;
        checks.push((
            "weight",
            (loss(&plus, x) - loss(&minus, x)) / (2.0 * h as f64),
            dot(&tune_grads[1], &values(&v)),
        ));
    }
    let vectors: [(&str, usize, VectorField<R>); 3] = [
        ("bias", 2, |t| &mut t.bias),
        ("gamma", 3, |t| &mut t.gamma),
        ("beta", 4, |t| &mut t.beta),
    ];
    for (name, index, field) in vectors {
        let mut base = t.clone();
        let Some(p) = field(&mut base).clone() else {
            continue;
        };
        let v: Tensor<1> = direction(p.dims().to_vec());
        let mut plus = t.clone();
        *field(&mut plus) = Some(p.clone() + v.clone() * h);
        let mut minus = t.clone();
        *field(&mut minus) = Some(p - v.clone() * h);
        checks.push((
            name,
            (loss(&plus, x) - loss(&minus, x)) / (2.0 * h as f64),
            dot(&tune_grads[index], &values(&v)),
        ));
    }
    for (name, fd, analytic) in checks {
        let err = (fd - analytic).abs();
        prop_assert!(
            err <= 2e-3 * (analytic.abs() + scale * 1e-2),
            "{name}: finite difference {fd} vs gradient {analytic}"
        );
    }
    Ok(())
}

/// A zero or tiny `gamma` (zero-initialised residual branches) makes `s` uninvertible: the
/// fused op's backward must then refold `W'` (weight side) instead of dividing `dW` by `s`,
/// and still equal Eval's gradients, gamma's included.
pub fn zero_and_tiny_gammas_still_give_eval_gradients() {
    for activation in [Activation::Identity, Activation::Relu] {
        let s = Shape {
            dims: 2,
            batch: 2,
            groups: 1,
            cin_per_group: 3,
            cout_per_group: 4,
            size: 6,
            kernel: 3,
            stride: 1,
            padding: 1,
            dilation: 1,
            bias: true,
            affine: true,
            eps: 1e-5,
            activation,
        };
        let mut t = tensors::<4>(&s);
        t.gamma = Some(Tensor::from_floats([0.0, 1e-12, 0.7, -1.3], &device()));
        let x = Tensor::<4>::random(s.input_shape(), Distribution::Normal(0.0, 1.0), &device());
        tune_matches_eval(&s, &t, &x).unwrap();
    }
}
