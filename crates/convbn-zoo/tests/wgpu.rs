//! Pretrained MobileNetV2 on burn's wgpu backend (a software adapter by default, see
//! `common::wgpu_device`) gives the CPU backend's logits, and torchvision's, in Eval, Tune and
//! Deploy. Built with `--features wgpu` (the README's test command enables it).
#![cfg(feature = "wgpu")]

mod common;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use common::{argmax, asset, device, values, wgpu_device};
use convbn::{Mode, set_mode};
use convbn_zoo::MobileNetV2;
use convbn_zoo::checkpoint::Checkpoint;
use convbn_zoo::load::{LoadOptions, load};

fn pretrained(weights: &Checkpoint, device: &Device) -> MobileNetV2 {
    let mut model = MobileNetV2::new(1000, device);
    let report = load(
        &mut model,
        weights,
        &MobileNetV2::torchvision_naming(),
        LoadOptions::default(),
    )
    .expect("strict load");
    assert!(report.is_clean());
    model
}

#[test]
fn pretrained_mobilenet_v2_gives_the_cpu_logits_on_wgpu() {
    let weights = asset("mobilenet_v2").expect("MobileNetV2 weights");
    let weights = Checkpoint::open(&weights).expect("legacy .pth");
    let reference = Checkpoint::from_safetensors(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mobilenet_v2_reference.safetensors"),
    )
    .expect("reference fixture");
    let (cpu, gpu) = (device(), wgpu_device());
    let mut on_cpu = pretrained(&weights, &cpu);
    let mut on_gpu = pretrained(&weights, &gpu);
    for mode in [Mode::Eval, Mode::Tune, Mode::Deploy] {
        set_mode(&mut on_cpu, mode).unwrap();
        set_mode(&mut on_gpu, mode).unwrap();
        for (image, top1) in [(0, 967), (1, 285)] {
            let input = &reference.tensors[&format!("{image}.input")];
            let data = TensorData::new(input.values.clone(), input.shape.clone());
            let cpu_logits = values(
                &on_cpu
                    .forward(Tensor::<4>::from_data(data.clone(), &cpu))
                    .unwrap(),
            );
            let gpu_logits = values(&on_gpu.forward(Tensor::<4>::from_data(data, &gpu)).unwrap());
            let torchvision = &reference.tensors[&format!("{image}.logits")].values;
            let max_rel = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
                    .fold(0.0, f32::max)
            };
            let vs_cpu = max_rel(&gpu_logits, &cpu_logits);
            let vs_torch = max_rel(&gpu_logits, torchvision);
            println!(
                "{mode} image {image}: wgpu vs CPU {vs_cpu:.2e}, vs torchvision {vs_torch:.2e}"
            );
            assert!(vs_cpu <= 1e-4, "{mode} image {image}: wgpu vs CPU {vs_cpu}");
            assert!(
                vs_torch <= 1e-3,
                "{mode} image {image}: wgpu vs torchvision {vs_torch}"
            );
            assert_eq!(argmax(&gpu_logits), top1, "{mode} image {image}");
        }
    }
}

/// An imported ONNX model runs on the GPU code path too: the PP-OCR classifier on wgpu gives
/// the CPU's probabilities in Eval, Tune and Deploy, and Tune's gradients flow.
#[test]
fn an_onnx_model_gives_the_cpu_outputs_on_wgpu() {
    let path = asset("ppocr_cls").expect("PP-OCR classifier");
    let (cpu, gpu) = (device(), wgpu_device());
    let on_cpu = convbn_onnx::OnnxModel::from_file(&path, &cpu).unwrap();
    let on_gpu = convbn_onnx::OnnxModel::from_file(&path, &gpu).unwrap();
    let data = TensorData::new(
        (0..2 * 3 * 48 * 192)
            .map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0)
            .collect(),
        [2, 3, 48, 192],
    );
    for mode in [Mode::Eval, Mode::Tune, Mode::Deploy] {
        let (mut c, mut g) = (on_cpu.clone(), on_gpu.clone());
        set_mode(&mut c, mode).unwrap();
        set_mode(&mut g, mode).unwrap();
        let want = values(&c.forward(Tensor::from_data(data.clone(), &cpu)).unwrap());
        let logits = g.logits(Tensor::from_data(data.clone(), &gpu)).unwrap();
        let got = values(&burn::tensor::activation::softmax(logits.clone(), 1));
        let diff = common::relative_diff(&got, &want);
        println!("PP-OCR cls {mode} on wgpu vs CPU: {diff:.2e} (relative)");
        assert!(diff <= 1e-4, "{mode}: {diff}");
        if mode == Mode::Tune {
            let grads = logits.sum().backward();
            let convbn_onnx::Layer::ConvBn(block) = &g.layers[0] else {
                panic!("the first layer is a ConvBN block");
            };
            let grad = block.weight.grad(&grads).expect("Tune's weight gradient");
            assert!(values(&grad).iter().all(|v| v.is_finite()));
        }
    }
}
