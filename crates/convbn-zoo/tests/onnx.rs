//! ONNX import: PyTorch's exports of MobileNetV2 and ResNet-18 and the PP-OCR classifier run
//! as trainable models whose Conv->BN pairs are ConvBN blocks. Fixtures: `bench/onnx_fixtures.sh`
//! (made on first use, see `common::onnx_fixtures`).

mod common;

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use common::{asset, device, onnx_fixtures, relative_diff, values};
use convbn::{Mode, blocks, set_mode};
use convbn_onnx::{Layer, OnnxError, OnnxModel};
use convbn_zoo::checkpoint::Checkpoint;
use convbn_zoo::load::{LoadOptions, load_file};
use convbn_zoo::pretrained::{Weights, build};
use convbn_zoo::{Architecture, Model, ResNet};

fn reference(dir: &Path) -> Checkpoint {
    Checkpoint::from_safetensors(dir.join("reference.safetensors")).expect("reference")
}

fn input(reference: &Checkpoint, name: &str, d: &Device) -> Tensor<4> {
    let t = &reference.tensors[&format!("{name}.input")];
    Tensor::from_data(TensorData::new(t.values.clone(), t.shape.clone()), d)
}

fn output(reference: &Checkpoint, name: &str) -> Vec<f32> {
    reference.tensors[&format!("{name}.output")].values.clone()
}

/// How many layers of each kind the model has: (ConvBN blocks, plain convs, lone BNs, linears).
fn kinds(model: &OnnxModel) -> [usize; 4] {
    let mut k = [0; 4];
    for layer in &model.layers {
        k[match layer {
            Layer::ConvBn(_) => 0,
            Layer::Conv(_) => 1,
            Layer::Norm(_) => 2,
            Layer::Linear(_) => 3,
        }] += 1;
    }
    k
}

/// The ONNX export's logits on the fixture input equal the zoo model's (same weights) and
/// PyTorch's, within 1e-4 relative.
fn equals_zoo_and_pytorch(
    label: &str,
    name: &str,
    onnx: &OnnxModel,
    zoo: &Model,
    reference: &Checkpoint,
    d: &Device,
) {
    let x = input(reference, name, d);
    let ours = values(&onnx.forward(x.clone()).unwrap());
    let vs_zoo = relative_diff(&ours, &values(&zoo.forward(x).unwrap()));
    let vs_torch = relative_diff(&ours, &output(reference, name));
    println!("{label} ONNX: vs zoo {vs_zoo:.2e}, vs PyTorch {vs_torch:.2e} (relative)");
    assert!(vs_zoo <= 1e-4, "vs zoo {vs_zoo}");
    assert!(vs_torch <= 1e-4, "vs PyTorch {vs_torch}");
}

#[test]
fn onnx_mobilenet_v2_equals_the_zoo_model_and_pytorch() {
    let (Some(dir), Some(_)) = (onnx_fixtures(), asset("mobilenet_v2")) else {
        return;
    };
    let d = device();
    let onnx = OnnxModel::from_file(dir.join("mobilenet_v2.onnx"), &d).unwrap();
    // Every Conv->BN pair of the export is a block (PyTorch keeps BN as its own node here).
    assert_eq!(kinds(&onnx), [52, 0, 0, 1]);
    let zoo = build(Architecture::MobileNetV2, &Weights::ImageNet, true, &d).unwrap();
    assert_eq!(blocks(&onnx).len(), blocks(&zoo).len());
    equals_zoo_and_pytorch(
        "MobileNetV2",
        "mobilenet_v2",
        &onnx,
        &zoo,
        &reference(&dir),
        &d,
    );
}

#[test]
fn onnx_resnet18_equals_the_zoo_model_and_pytorch() {
    let Some(dir) = onnx_fixtures() else {
        return;
    };
    let d = device();
    let onnx = OnnxModel::from_file(dir.join("resnet18.onnx"), &d).unwrap();
    assert_eq!(kinds(&onnx), [20, 0, 0, 1]);
    let mut zoo = Model::new(Architecture::ResNet18, 1000, &d);
    load_file(
        &mut zoo,
        dir.join("resnet18.safetensors"),
        &ResNet::torchvision_naming(),
        LoadOptions::default(),
    )
    .unwrap();
    equals_zoo_and_pytorch("ResNet-18", "resnet18", &onnx, &zoo, &reference(&dir), &d);
}

#[test]
fn ppocr_classifier_matches_onnx_reference_semantics() {
    let Some(dir) = onnx_fixtures() else {
        return;
    };
    let d = device();
    let model = OnnxModel::from_file(asset("ppocr_cls").unwrap(), &d).unwrap();
    // 53 Conv, 35 BatchNormalization (each after a Conv), one MatMul+Add classifier.
    assert_eq!(kinds(&model), [35, 18, 0, 1]);
    assert_eq!(model.num_classes(), Some(2));
    let reference = reference(&dir);
    let x = input(&reference, "ppocr_cls", &d);
    let want = output(&reference, "ppocr_cls");
    for mode in [Mode::Eval, Mode::Tune, Mode::Deploy] {
        let mut m = model.clone();
        set_mode(&mut m, mode).unwrap();
        let probs = values(&m.forward(x.clone()).unwrap());
        let diff = relative_diff(&probs, &want);
        println!("PP-OCR cls {mode}: vs onnx.reference {diff:.2e} (relative)");
        assert!(diff <= 1e-4, "{mode}: {diff}");
        // The logits are the Softmax's input: their softmax is the output.
        let logits = m.logits(x.clone()).unwrap();
        let again = values(&burn::tensor::activation::softmax(logits, 1));
        assert!(relative_diff(&again, &probs) <= 1e-5);
    }
}

#[test]
fn a_new_classifier_replaces_the_onnx_head() {
    let Some(path) = asset("ppocr_cls") else {
        return;
    };
    let d = device();
    let model = OnnxModel::from_file(&path, &d)
        .unwrap()
        .with_num_classes(5, &d)
        .unwrap();
    assert_eq!(model.num_classes(), Some(5));
    let x = Tensor::<4>::zeros([3, 3, 48, 96], &d);
    assert_eq!(model.logits(x.clone()).unwrap().dims(), [3, 5]);
    assert_eq!(model.forward(x).unwrap().dims(), [3, 5]);
}

#[test]
fn bad_onnx_files_and_inputs_are_clear_errors() {
    let Some(path) = asset("ppocr_cls") else {
        return;
    };
    let d = device();
    let bytes = std::fs::read(&path).unwrap();
    let err = |bytes: &[u8]| OnnxModel::from_bytes(bytes, &d).unwrap_err();

    assert!(matches!(err(&[]), OnnxError::Parse { .. }));
    for cut in [10, bytes.len() / 3, bytes.len() - 7] {
        let e = err(&bytes[..cut]);
        assert!(matches!(e, OnnxError::Parse { .. }), "cut at {cut}: {e}");
    }
    let e = err(b"this is not an ONNX file at all, only text");
    assert!(matches!(e, OnnxError::Parse { .. }), "{e}");
    let missing = OnnxModel::from_file("/nonexistent/model.onnx", &d).unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/model.onnx"),
        "{missing}"
    );

    // Unsupported operators are all listed in one error.
    use onnx_ir::Message;
    let mut proto = onnx_ir::ModelProto::parse_from_bytes(&bytes).unwrap();
    let mut renamed = 0;
    for node in proto.graph.mut_or_insert_default().node.iter_mut() {
        if node.op_type == "HardSigmoid" {
            node.op_type = "Selu".into();
            renamed += 1;
        } else if node.op_type == "Relu" && renamed < 100 {
            node.op_type = "Softplus".into();
            renamed += 100;
        }
    }
    let edited = proto.write_to_bytes().unwrap();
    match err(&edited) {
        OnnxError::Unsupported(ops) => {
            let names: Vec<&str> = ops.iter().map(|o| o.op.as_str()).collect();
            assert_eq!(names, ["Selu", "Softplus"], "{ops:?}");
            assert_eq!(ops[0].nodes.len(), 9);
            let text = OnnxError::Unsupported(ops).to_string();
            assert!(
                text.contains("Selu (9 nodes") && text.contains("and 6 more"),
                "{text}"
            );
        }
        other => panic!("expected Unsupported, got {other}"),
    }

    // Inputs that do not fit are errors, not panics.
    let model = OnnxModel::from_bytes(&bytes, &d).unwrap();
    let wrong_channels = Tensor::<4>::zeros([1, 4, 48, 96], &d);
    let e = model.forward(wrong_channels).unwrap_err();
    assert!(
        e.to_string().contains("channels") || e.to_string().contains("shape"),
        "{e}"
    );
    let too_small = Tensor::<4>::zeros([1, 3, 1, 1], &d);
    assert!(model.forward(too_small).is_err());
}

#[test]
fn the_zoo_builds_onnx_models_and_saves_their_weights() {
    let Some(path) = asset("ppocr_cls") else {
        return;
    };
    let d = device();
    let spec: convbn_zoo::ModelSpec = format!("onnx:{}", path.display()).parse().unwrap();
    let model = build(&spec, &Weights::ImageNet, false, &d).unwrap();
    assert!(matches!(model, Model::Onnx(_)));
    assert!(build(&spec, &Weights::Random, false, &d).is_err());
    // Saved weights (burn paths) load back onto the same ONNX model.
    let dir = std::env::temp_dir().join(format!("convbn-onnx-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("w.safetensors");
    let mut tuned = model.clone();
    set_mode(&mut tuned, Mode::Tune).unwrap();
    convbn_zoo::load::to_checkpoint(&tuned, &tuned.pytorch_naming())
        .save_safetensors(&file)
        .unwrap();
    let again = build(&spec, &Weights::File(file.clone()), false, &d).unwrap();
    let x = Tensor::<4>::ones([1, 3, 48, 64], &d);
    assert_eq!(
        values(&again.forward(x.clone()).unwrap()),
        values(&model.forward(x).unwrap())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
