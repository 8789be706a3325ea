//! Checkpoint formats, strict and partial loading, clear errors, and saving models back.

mod common;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use common::{device, values};
use convbn::{Mode, set_mode};
use convbn_zoo::checkpoint::{Checkpoint, Entry};
use convbn_zoo::load::{
    LoadOptions, Naming, load, load_safetensors, save_safetensors, to_checkpoint,
};
use convbn_zoo::{Architecture, MobileNetV2, Model, ZooError};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convbn-zoo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn reads_zip_and_legacy_pytorch_files_with_strided_tensors() {
    for file in ["tiny_zip.pth", "tiny_legacy.pth"] {
        let c = Checkpoint::open(fixture(file)).unwrap();
        assert_eq!(
            c.tensors["a"],
            Entry {
                shape: vec![2, 3],
                values: vec![0., 1., 2., 3., 4., 5.]
            },
            "{file}"
        );
        // `b` is a view with offset 1 and stride 3 into a's storage.
        assert_eq!(
            c.tensors["b"],
            Entry {
                shape: vec![2],
                values: vec![1., 4.]
            },
            "{file}"
        );
        assert_eq!(
            c.ignored,
            vec!["n".to_string()],
            "{file}: integer tensors are set aside"
        );
    }
}

fn truncate(src: &Path, name: &str) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let out = scratch(name);
    std::fs::write(&out, &bytes[..bytes.len() / 2]).unwrap();
    out
}

#[test]
fn truncated_and_garbage_files_are_clear_errors() {
    let mut files = vec![
        truncate(&fixture("tiny_zip.pth"), "t.pth"),
        truncate(&fixture("tiny_legacy.pth"), "l.pth"),
    ];
    let model = MobileNetV2::new(10, &burn::tensor::Device::flex());
    let st = scratch("m.safetensors");
    save_safetensors(&model, &st).unwrap();
    files.push(truncate(&st, "m-truncated.safetensors"));
    let garbage = scratch("garbage.pth");
    std::fs::write(&garbage, b"this is not a checkpoint").unwrap();
    files.push(garbage);
    if let Some(weights) = common::asset("mobilenet_v2") {
        files.push(truncate(&weights, "mobilenet-truncated.pth"));
    }
    for file in files {
        match Checkpoint::open(&file) {
            Err(e @ ZooError::Corrupt { .. }) => {
                assert!(
                    e.to_string().contains(&file.display().to_string()),
                    "names the file: {e}"
                )
            }
            other => panic!(
                "{}: expected a Corrupt error, got {other:?}",
                file.display()
            ),
        }
    }
    let missing = Checkpoint::open(scratch("does-not-exist.pth")).unwrap_err();
    assert!(matches!(missing, ZooError::Io { .. }), "{missing}");
}

fn torch_checkpoint(model: &MobileNetV2) -> Checkpoint {
    to_checkpoint(model, &MobileNetV2::torchvision_naming())
}

#[test]
fn strict_loading_lists_missing_unexpected_and_mismatched_keys() {
    let d = burn::tensor::Device::flex();
    let source = MobileNetV2::new(1000, &d);
    let mut ckpt = torch_checkpoint(&source);
    assert!(
        ckpt.tensors.contains_key("features.1.conv.0.0.weight"),
        "torchvision names"
    );
    assert!(ckpt.tensors.contains_key("features.18.1.running_var"));
    assert_eq!(
        ckpt.tensors["classifier.1.weight"].shape,
        vec![1000, 1280],
        "PyTorch layout"
    );
    ckpt.tensors.remove("features.3.conv.1.1.running_mean");
    ckpt.tensors.insert(
        "extra.weight".into(),
        Entry {
            shape: vec![1],
            values: vec![0.0],
        },
    );
    let mut model = MobileNetV2::new(1000, &d);
    let before = values(&model.stem.weight.val());
    let err = load(
        &mut model,
        &ckpt,
        &MobileNetV2::torchvision_naming(),
        LoadOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("missing keys (1)") && msg.contains("features.3.conv.1.1.running_mean"),
        "{msg}"
    );
    assert!(
        msg.contains("unexpected keys (1)") && msg.contains("extra.weight"),
        "{msg}"
    );
    assert_eq!(
        values(&model.stem.weight.val()),
        before,
        "a failed load changes nothing"
    );

    // Partial loading keeps the model's values for what is missing and reports it.
    let report = load(
        &mut model,
        &ckpt,
        &MobileNetV2::torchvision_naming(),
        LoadOptions { partial: true },
    )
    .unwrap();
    assert_eq!(report.missing.len(), 1);
    assert_eq!(report.unexpected, vec!["extra.weight".to_string()]);
    assert_eq!(
        values(&model.stem.weight.val()),
        values(&source.stem.weight.val())
    );

    // A wrong shape is never loaded, even partially.
    let mut ckpt = torch_checkpoint(&source);
    ckpt.tensors.get_mut("features.0.0.weight").unwrap().shape = vec![32, 3, 9, 1];
    for partial in [false, true] {
        let err = load(
            &mut model,
            &ckpt,
            &MobileNetV2::torchvision_naming(),
            LoadOptions { partial },
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(
                "features.0.0.weight: checkpoint [32, 3, 9, 1], model stem.weight [32, 3, 3, 3]"
            ),
            "{msg}"
        );
    }
}

#[test]
fn a_new_head_loads_partially_for_transfer_learning() {
    let d = burn::tensor::Device::flex();
    let ckpt = torch_checkpoint(&MobileNetV2::new(1000, &d));
    let mut model = MobileNetV2::new(10, &d);
    let err = load(
        &mut model,
        &ckpt,
        &MobileNetV2::torchvision_naming(),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("classifier.1.weight"), "{err}");
    let mut model = MobileNetV2::new(1000, &d);
    load(
        &mut model,
        &ckpt,
        &MobileNetV2::torchvision_naming(),
        LoadOptions::default(),
    )
    .unwrap();
    let model = model.with_num_classes(10, &d);
    assert_eq!(model.classifier.weight.val().dims(), [1280, 10]);
}

#[test]
fn invalid_running_statistics_in_a_checkpoint_are_rejected() {
    let d = burn::tensor::Device::flex();
    let mut ckpt = torch_checkpoint(&MobileNetV2::new(1000, &d));
    ckpt.tensors
        .get_mut("features.5.conv.1.1.running_var")
        .unwrap()
        .values[3] = -1.0;
    let mut model = MobileNetV2::new(1000, &d);
    let err = load(
        &mut model,
        &ckpt,
        &MobileNetV2::torchvision_naming(),
        LoadOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("blocks.4.depthwise") && msg.contains("negative"),
        "{msg}"
    );
}

#[test]
fn torchvision_names_round_trip_for_every_architecture() {
    let d = burn::tensor::Device::flex();
    let expect = |arch: Architecture, keys: &[&str]| {
        let model = Model::new(arch, 1000, &d);
        let ckpt = to_checkpoint(&model, &model.pytorch_naming());
        for k in keys {
            assert!(ckpt.tensors.contains_key(*k), "{arch}: no key {k}");
        }
        let mut copy = Model::new(arch, 1000, &d);
        let naming = copy.pytorch_naming();
        load(&mut copy, &ckpt, &naming, LoadOptions::default()).unwrap();
        assert_eq!(to_checkpoint(&copy, &naming), ckpt, "{arch}");
    };
    use Architecture as A;
    expect(
        A::ResNet18,
        &[
            "conv1.weight",
            "bn1.running_var",
            "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.bias",
            "layer4.1.bn2.weight",
            "fc.weight",
        ],
    );
    expect(
        A::ResNet50,
        &[
            "layer1.0.conv3.weight",
            "layer1.0.bn3.running_mean",
            "layer3.5.conv2.weight",
            "fc.bias",
        ],
    );
    expect(A::ResNeXt50_32x4d, &["layer4.2.bn3.weight"]);
    expect(
        A::Vgg11Bn,
        &[
            "features.0.weight",
            "features.0.bias",
            "features.1.running_mean",
            "features.4.weight",
            "features.26.weight",
            "classifier.0.weight",
            "classifier.6.bias",
        ],
    );
    expect(
        A::Vgg16Bn,
        &[
            "features.3.weight",
            "features.7.weight",
            "features.40.weight",
            "features.41.running_var",
            "classifier.3.weight",
        ],
    );
    expect(
        A::RegNetX400mf,
        &[
            "stem.0.weight",
            "stem.1.bias",
            "trunk_output.block1.block1-0.proj.0.weight",
            "trunk_output.block4.block4-11.f.c.1.running_var",
            "trunk_output.block3.block3-6.f.b.0.weight",
            "fc.weight",
        ],
    );
    expect(A::MobileNetV2, &["features.17.conv.3.weight"]);
    expect(
        A::EfficientNetLite0,
        &[
            "_conv_stem.weight",
            "_blocks.15._bn2.running_var",
            "_conv_head.weight",
            "_fc.weight",
        ],
    );
}

#[test]
fn saving_and_loading_loses_nothing_in_every_mode() {
    let d = device();
    let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &d);
    for mode in Mode::ALL {
        let mut model = Model::new(Architecture::MobileNetV2, 10, &d);
        // Non-trivial statistics: one Train step first.
        set_mode(&mut model, Mode::Train).unwrap();
        model.forward(x.clone()).unwrap();
        set_mode(&mut model, mode).unwrap();
        let path = scratch(&format!("model-{mode}.safetensors"));
        save_safetensors(&model, &path).unwrap();

        let mut restored = Model::new(Architecture::MobileNetV2, 10, &d);
        set_mode(&mut restored, mode).unwrap();
        load_safetensors(&mut restored, &path).unwrap();
        let eval = |m: &Model| {
            let mut m = m.clone();
            if mode == Mode::Train {
                set_mode(&mut m, Mode::Eval).unwrap();
            }
            values(&m.forward(x.clone()).unwrap())
        };
        assert_eq!(
            eval(&restored),
            eval(&model),
            "{mode}: safetensors round trip"
        );
        assert_eq!(
            to_checkpoint(&restored, &Naming::burn()),
            to_checkpoint(&model, &Naming::burn())
        );

        // burn's own record files.
        let record = scratch(&format!("model-{mode}.burn"));
        model.clone().save_file(&record).unwrap();
        let mut fresh = Model::new(Architecture::MobileNetV2, 10, &d);
        set_mode(&mut fresh, mode).unwrap();
        let fresh = fresh.try_load_file(&record).unwrap();
        assert_eq!(eval(&fresh), eval(&model), "{mode}: burn record round trip");
    }
}
