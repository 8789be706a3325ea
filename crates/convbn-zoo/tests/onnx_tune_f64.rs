//! Tune computes Eval's outputs and gradients on imported ONNX models (PyTorch's MobileNetV2
//! and ResNet-18, the PP-OCR classifier), in f64 so that the comparison is not blurred by f32
//! rounding flipping ReLU/ReLU6 kinks. Own binary: the CPU device's float type is fixed per
//! process at its first tensor.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, FloatDType, Gradients, Tensor, TensorData};
use common::{asset, onnx_fixtures, relative_diff};
use convbn::{Mode, ModulePath, set_mode};
use convbn_onnx::OnnxModel;

/// Gradients of every parameter, by path, as f64.
fn gradients(model: &OnnxModel, grads: &Gradients) -> Vec<(String, Vec<f64>)> {
    struct Collect<'a> {
        grads: &'a Gradients,
        path: ModulePath,
        out: Vec<(String, Vec<f64>)>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.enter(name, container_type);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = param.grad(self.grads) {
                let v = g.into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
                self.out.push((self.path.dotted(), v));
            }
        }
    }
    let mut c = Collect {
        grads,
        path: ModulePath::new(),
        out: Vec::new(),
    };
    model.visit(&mut c);
    c.out
}

#[test]
fn tune_gives_evals_outputs_and_gradients_on_every_onnx_model() {
    let (Some(dir), Some(ppocr)) = (onnx_fixtures(), asset("ppocr_cls")) else {
        return;
    };
    let d: Device = convbn::DeviceSpec::Cpu
        .training_device(FloatDType::F64)
        .unwrap();
    for (path, shape) in [
        (dir.join("mobilenet_v2.onnx"), [2, 3, 64, 64]),
        (dir.join("resnet18.onnx"), [2, 3, 64, 64]),
        (ppocr, [2, 3, 48, 192]),
    ] {
        let eval = OnnxModel::from_file(&path, &d).unwrap();
        let mut tune = eval.clone();
        set_mode(&mut tune, Mode::Tune).unwrap();
        d.seed(3);
        let x = Tensor::<4>::random(shape, burn::tensor::Distribution::Normal(0.0, 1.0), &d);
        let run = |m: &OnnxModel| {
            let logits = m.logits(x.clone()).unwrap();
            let n = logits.dims().iter().product::<usize>();
            let w = Tensor::<2>::from_data(
                TensorData::new(
                    (0..n)
                        .map(|i| ((i * 7919) % 13) as f64 / 13.0 - 0.5)
                        .collect(),
                    logits.dims(),
                ),
                &d,
            );
            let out = logits
                .clone()
                .into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .unwrap();
            let grads = (logits * w).sum().backward();
            (out, gradients(m, &grads))
        };
        let (out_e, grads_e) = run(&eval);
        let (out_t, grads_t) = run(&tune);
        let out_diff = relative_diff(&out_t, &out_e);
        assert_eq!(
            grads_e.len(),
            grads_t.len(),
            "same parameters get gradients"
        );
        let mut worst = (0f64, String::new());
        for ((pe, ge), (pt, gt)) in grads_e.iter().zip(&grads_t) {
            assert_eq!(pe, pt);
            let diff = relative_diff(gt, ge);
            if diff > worst.0 {
                worst = (diff, pe.clone());
            }
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        println!(
            "{name} (f64): Tune vs Eval outputs {out_diff:.2e}, worst gradient {:.2e} ({}), {} \
             parameters",
            worst.0,
            worst.1,
            grads_e.len()
        );
        assert!(out_diff <= 1e-10, "{name}: outputs {out_diff}");
        assert!(
            worst.0 <= 1e-9,
            "{name}: gradient of {} differs by {}",
            worst.1,
            worst.0
        );
    }
}
