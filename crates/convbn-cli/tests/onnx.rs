//! The commands on an ONNX model (`--model onnx:FILE`): the PP-OCR text-direction classifier
//! from its PyPI wheel.

mod common;

use common::{cached, convbn, image_folder, stderr, stdout, temp};

#[test]
fn inspect_predict_and_attack_run_on_an_onnx_model() {
    let (Some(ppocr), Some(coffee)) = (cached("ppocr_cls"), cached("coffee")) else {
        return;
    };
    let model = format!("onnx:{ppocr}");

    let o = convbn(&["inspect", &model, "--mode", "tune", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 35, "35 Conv->BatchNormalization pairs");
    assert!(blocks.iter().all(|b| b["mode"] == "tune"));
    let first = blocks[0]["onnx_nodes"].as_str().unwrap();
    assert!(
        first.contains("conv2d") && first.contains("batchnormalization"),
        "{first}"
    );
    assert!(v["parameters"].as_u64().unwrap() > 100_000);

    let o = convbn(&[
        "predict", "--model", &model, "--mode", "tune", "--format", "json", &coffee,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let top = v[0]["top5"].as_array().unwrap();
    assert_eq!(
        top.len(),
        2,
        "the model has two classes (0 and 180 degrees)"
    );
    let total: f64 = top.iter().map(|p| p["probability"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4, "{total}");
    assert!(
        top.iter().all(|p| p["label"] == "0" || p["label"] == "1"),
        "indices, not ImageNet names"
    );

    let out = temp("onnx-attack");
    let o = convbn(&[
        "attack",
        "--model",
        &model,
        "--mode",
        "eval,tune",
        "--method",
        "fgsm",
        "--eps",
        "8/255",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        &coffee,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    let o = convbn(&[
        "attack",
        "--model",
        &model,
        "--target",
        "5",
        "--out",
        out.to_str().unwrap(),
        &coffee,
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("5"), "{}", stderr(&o));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn finetune_trains_an_onnx_model_in_tune_mode() {
    let Some(ppocr) = cached("ppocr_cls") else {
        return;
    };
    let root = temp("onnx-finetune");
    let data = root.join("data");
    image_folder(&data, 3, 6);
    let out = root.join("run");
    let model = format!("onnx:{ppocr}");
    let o = convbn(&[
        "finetune",
        "--model",
        &model,
        "--mode",
        "tune",
        "--weights",
        "imagenet",
        "--data",
        data.to_str().unwrap(),
        "--size",
        "64",
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--lr",
        "0.01",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(summary.to_string().contains("tune"), "{summary}");
    let weights = out.join("tune").join("checkpoint.safetensors");
    assert!(weights.is_file(), "{}", weights.display());
    // Random initialisation does not exist for a model brought with its weights.
    let o = convbn(&[
        "finetune",
        "--model",
        &model,
        "--weights",
        "random",
        "--data",
        data.to_str().unwrap(),
        "--out",
        root.join("other").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("weights in its file"), "{}", stderr(&o));
    // A missing or broken file is a clear error.
    let broken = root.join("broken.onnx");
    std::fs::write(&broken, b"not onnx").unwrap();
    for bad in [
        format!("onnx:{}", broken.display()),
        "onnx:/nonexistent.onnx".into(),
    ] {
        let o = convbn(&["inspect", &bad]);
        assert!(!o.status.success());
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("onnx") || stderr(&o).contains("ONNX"),
            "{}",
            stderr(&o)
        );
    }
    std::fs::remove_dir_all(&root).unwrap();
}
