//! The PyTorch reference cases, run on whichever device the calling test binary sets.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::common::{assert_close, device, tensor, values};
use burn::tensor::Tensor;
use convbn::{ConvBn, ConvBnConfig, ConvBnTensors, Mode, set_mode};
use serde::Deserialize;

const TOL: f32 = 1e-4;

#[derive(Deserialize, Debug)]
struct Case {
    index: usize,
    dims: usize,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
    conv_bias: bool,
    affine: bool,
    eps: f64,
    momentum: f64,
}

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

struct Tensors(HashMap<String, (Vec<f32>, Vec<usize>)>);

impl Tensors {
    fn get(&self, case: usize, name: &str) -> (Vec<f32>, Vec<usize>) {
        self.0
            .get(&format!("{case}.{name}"))
            .unwrap_or_else(|| panic!("fixture has no tensor {case}.{name}"))
            .clone()
    }
    fn values(&self, case: usize, name: &str) -> Vec<f32> {
        self.get(case, name).0
    }
    fn tensor<const D: usize>(&self, case: usize, name: &str) -> Tensor<D> {
        let (v, s) = self.get(case, name);
        tensor(v, s, &device())
    }
}

fn load() -> (Vec<Case>, Tensors) {
    let dir = std::env::var_os("CONVBN_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"));
    let json = std::fs::read_to_string(dir.join("convbn_reference.json"))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let reference: Reference = serde_json::from_str(&json).expect("valid reference JSON");
    let bytes = std::fs::read(dir.join("convbn_reference.safetensors")).expect("safetensors file");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let map = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name} is not f32");
            let v = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, (v, view.shape().to_vec()))
        })
        .collect();
    assert_eq!(reference.cases.len(), 8, "the reference has eight cases");
    (reference.cases, Tensors(map))
}

fn config(case: &Case, mode: Mode) -> ConvBnConfig {
    ConvBnConfig::new(case.cin, case.cout, vec![case.k; case.dims])
        .with_stride(case.stride)
        .with_padding(case.pad)
        .with_dilation(case.dil)
        .with_groups(case.groups)
        .with_bias(case.conv_bias)
        .with_affine(case.affine)
        .with_eps(case.eps)
        .with_momentum(case.momentum)
        .with_mode(mode)
}

fn block<const R: usize>(case: &Case, t: &Tensors, mode: Mode) -> ConvBn<R> {
    let i = case.index;
    let param = |name: &str| {
        let v: Tensor<1> = t.tensor(i, name);
        v.require_grad()
    };
    config(case, mode)
        .init_with(ConvBnTensors {
            weight: t.tensor::<R>(i, "weight").require_grad(),
            bias: case.conv_bias.then(|| param("bias")),
            gamma: case.affine.then(|| param("gamma")),
            beta: case.affine.then(|| param("beta")),
            running_mean: t.tensor(i, "running_mean"),
            running_var: t.tensor(i, "running_var"),
        })
        .expect("reference block builds")
}

/// Run forward with loss `sum(out * grad_out)` and return the output and the gradients of
/// x and of every parameter the block has.
fn run<const R: usize>(
    block: &ConvBn<R>,
    case: &Case,
    t: &Tensors,
) -> (Vec<f32>, HashMap<&'static str, Vec<f32>>) {
    let x = t.tensor::<R>(case.index, "x").require_grad();
    let out = block.forward(x.clone()).expect("forward");
    let grad_out = t.tensor::<R>(case.index, "grad_out");
    let grads = (out.clone() * grad_out).sum().backward();
    let mut g = HashMap::new();
    g.insert("x", values(&x.grad(&grads).expect("x grad")));
    g.insert(
        "weight",
        values(&block.weight.val().grad(&grads).expect("weight grad")),
    );
    for (name, p) in [
        ("bias", &block.bias),
        ("gamma", &block.gamma),
        ("beta", &block.beta),
    ] {
        if let Some(p) = p {
            g.insert(name, values(&p.val().grad(&grads).expect("param grad")));
        }
    }
    (values(&out), g)
}

fn check_case<const R: usize>(case: &Case, t: &Tensors) {
    let i = case.index;
    let label = |mode: &str, what: &str| format!("case {i} {mode} {what}");
    let param_names: Vec<&str> = [
        Some("weight"),
        case.conv_bias.then_some("bias"),
        case.affine.then_some("gamma"),
        case.affine.then_some("beta"),
    ]
    .into_iter()
    .flatten()
    .collect();

    // Eval and Tune against PyTorch's eval reference.
    for mode in [Mode::Eval, Mode::Tune] {
        let b = block::<R>(case, t, mode);
        assert_eq!(b.mode(), mode);
        let (out, grads) = run(&b, case, t);
        assert_close(
            &label(mode.name(), "out"),
            &out,
            &t.values(i, "eval.out"),
            TOL,
        );
        for name in std::iter::once("x").chain(param_names.iter().copied()) {
            assert_close(
                &label(mode.name(), &format!("grad.{name}")),
                &grads[name],
                &t.values(i, &format!("eval.grad.{name}")),
                TOL,
            );
        }
        assert_eq!(
            grads.len(),
            1 + param_names.len(),
            "exactly the block's params get grads"
        );
    }

    // Train: batch statistics, running statistics updated with the unbiased variance.
    let b = block::<R>(case, t, Mode::Train);
    let (out, grads) = run(&b, case, t);
    assert_close(&label("train", "out"), &out, &t.values(i, "train.out"), TOL);
    for name in std::iter::once("x").chain(param_names.iter().copied()) {
        assert_close(
            &label("train", &format!("grad.{name}")),
            &grads[name],
            &t.values(i, &format!("train.grad.{name}")),
            TOL,
        );
    }
    for stat in ["running_mean", "running_var"] {
        let value = if stat == "running_mean" {
            b.running_mean.value_sync()
        } else {
            b.running_var.value_sync()
        };
        assert_close(
            &label("train", stat),
            &values(&value),
            &t.values(i, &format!("train.{stat}")),
            TOL,
        );
    }

    // Deploy: folded parameters, outputs equal Eval's, gradients w.r.t. W' and b'.
    let mut b = block::<R>(case, t, Mode::Eval);
    set_mode(&mut b, Mode::Deploy).expect("fold");
    assert_eq!(b.mode(), Mode::Deploy);
    assert!(b.gamma.is_none() && b.beta.is_none());
    assert_close(
        &label("deploy", "weight"),
        &values(&b.weight.val()),
        &t.values(i, "deploy.weight"),
        TOL,
    );
    let folded_bias = b.bias.as_ref().expect("folded bias").val();
    assert_close(
        &label("deploy", "bias"),
        &values(&folded_bias),
        &t.values(i, "deploy.bias"),
        TOL,
    );
    let x = t.tensor::<R>(i, "x").require_grad();
    let out = b.forward(x.clone()).expect("forward");
    assert_close(
        &label("deploy", "out"),
        &values(&out),
        &t.values(i, "eval.out"),
        TOL,
    );
    let grads = (out * t.tensor::<R>(i, "grad_out")).sum().backward();
    let deploy_grads = [
        ("x", x.grad(&grads).map(|g| values(&g))),
        ("weight", b.weight.val().grad(&grads).map(|g| values(&g))),
        ("bias", folded_bias.grad(&grads).map(|g| values(&g))),
    ];
    for (name, g) in deploy_grads {
        assert_close(
            &label("deploy", &format!("grad.{name}")),
            &g.expect("deploy grad"),
            &t.values(i, &format!("deploy.grad.{name}")),
            TOL,
        );
    }
}

/// Every reference case on the current test device ([`crate::common::device`]).
pub fn every_reference_case_matches_pytorch_in_every_mode() {
    let (cases, tensors) = load();
    let mut dims_seen = [0usize; 4];
    for case in &cases {
        match case.dims {
            1 => check_case::<3>(case, &tensors),
            2 => check_case::<4>(case, &tensors),
            3 => check_case::<5>(case, &tensors),
            d => panic!("case {} has {d} spatial dims", case.index),
        }
        dims_seen[case.dims] += 1;
    }
    assert!(
        dims_seen[1] > 0 && dims_seen[2] > 0 && dims_seen[3] > 0,
        "1d, 2d and 3d covered"
    );
}
