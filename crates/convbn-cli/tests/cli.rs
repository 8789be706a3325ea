//! The `convbn` binary end to end.

mod common;

use std::process::Command;

use common::{cached, convbn, stderr, stdout};

#[test]
fn help_lists_the_commands() {
    let o = convbn(&["--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for cmd in [
        "modes",
        "bench-block",
        "fetch",
        "predict",
        "inspect",
        "finetune",
        "compare-modes",
        "stability",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from help:\n{text}");
    }
}

#[test]
fn modes_prints_a_table_computed_for_the_shape() {
    let o = convbn(&[
        "modes",
        "--in-channels",
        "16",
        "--out-channels",
        "32",
        "--size",
        "20",
        "--batch",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for mode in ["train", "eval", "deploy", "tune"] {
        assert!(text.contains(mode), "{mode} missing:\n{text}");
    }
    assert!(text.contains("X only"), "{text}");

    let o = convbn(&[
        "modes",
        "--in-channels",
        "16",
        "--out-channels",
        "32",
        "--size",
        "20",
        "--batch",
        "2",
        "--format",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rows = rows.as_array().expect("array");
    let kept = |mode: &str| {
        rows.iter().find(|r| r["mode"] == mode).unwrap()["kept_bytes"]
            .as_u64()
            .unwrap()
    };
    let x = 2 * 16 * 20 * 20 * 4;
    let y = 2 * 32 * 20 * 20 * 4;
    assert_eq!(kept("tune"), x);
    assert_eq!(kept("deploy"), x);
    assert_eq!(kept("eval"), x + y);
}

#[test]
fn modes_rejects_an_impossible_shape() {
    let o = convbn(&["modes", "--in-channels", "6", "--groups", "4"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("groups"), "{}", stderr(&o));
}

#[test]
fn bench_block_prints_one_json_object_with_ordered_memory() {
    let run = |mode: &str| -> serde_json::Value {
        let o = convbn(&[
            "bench-block",
            "--mode",
            mode,
            "--channels",
            "8",
            "--size",
            "16",
            "--batch",
            "2",
            "--blocks",
            "4",
            "--steps",
            "2",
            "--format",
            "json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).expect("one JSON object")
    };
    let mut retained = std::collections::HashMap::new();
    for mode in ["eval", "tune", "deploy", "train"] {
        let v = run(mode);
        assert_eq!(v["mode"], mode);
        for field in ["retained_bytes", "peak_bytes"] {
            assert!(v[field].as_u64().unwrap() > 0, "{field}: {v}");
        }
        assert!(v["step_ms_median"].as_f64().unwrap() > 0.0);
        assert!(v["peak_bytes"].as_u64() >= v["retained_bytes"].as_u64());
        retained.insert(mode, v["retained_bytes"].as_u64().unwrap());
    }
    // Deploy <= Tune < Eval (at this tiny shape Tune's per-block bookkeeping, a few hundred
    // bytes, is visible; the 1.02x bound on real shapes is checked by the core memory test).
    assert!(retained["deploy"] <= retained["tune"], "{retained:?}");
    assert!(retained["tune"] < retained["eval"], "{retained:?}");
    assert!(
        retained["tune"] as f64 <= 1.05 * retained["deploy"] as f64,
        "{retained:?}"
    );
}

#[test]
fn bench_block_rejects_bad_arguments() {
    let o = convbn(&["bench-block", "--mode", "fast"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("train, eval, deploy, tune"),
        "{}",
        stderr(&o)
    );
    let o = convbn(&["bench-block", "--steps", "0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("positive"), "{}", stderr(&o));
}

#[test]
fn predict_recognises_the_coffee_photo_with_both_pretrained_models() {
    let Some(coffee) = cached("coffee") else {
        return;
    };
    let Some(cat) = cached("chelsea") else { return };
    for mode in ["eval", "tune", "deploy"] {
        let o = convbn(&[
            "predict",
            "--model",
            "mobilenet_v2",
            "--mode",
            mode,
            "--format",
            "json",
            &coffee,
            &cat,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON value");
        let images = v.as_array().unwrap();
        assert_eq!(images.len(), 2);
        for (image, class, label) in [(0, 967, "espresso"), (1, 285, "Egyptian cat")] {
            let top5 = images[image]["top5"].as_array().unwrap();
            assert_eq!(top5.len(), 5);
            assert_eq!(top5[0]["class_index"], class, "{mode}: {v}");
            assert_eq!(top5[0]["label"], label);
            assert!(top5[0]["probability"].as_f64().unwrap() > 0.5);
        }
    }
    let o = convbn(&[
        "predict",
        "--model",
        "efficientnet_lite0",
        "--format",
        "json",
        &coffee,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let top1 = v[0]["top5"][0]["class_index"].as_u64().unwrap();
    // espresso, cup, coffee mug
    assert!(
        [967, 968, 504].contains(&top1),
        "EfficientNet-Lite0 top-1 {top1}: {v}"
    );

    let o = convbn(&["predict", &coffee]);
    assert!(
        stdout(&o).contains("espresso"),
        "table output: {}",
        stdout(&o)
    );
}

#[test]
fn predict_rejects_unreadable_images_and_unknown_models() {
    let bad = std::env::temp_dir().join(format!("convbn-bad-{}.png", std::process::id()));
    std::fs::write(&bad, b"not a png").unwrap();
    let o = convbn(&["predict", "--model", "resnet18", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no ImageNet weights"), "{}", stderr(&o));
    let o = convbn(&["predict", "--model", "alexnet", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown model 'alexnet'"),
        "{}",
        stderr(&o)
    );
    if cached("mobilenet_v2").is_some() {
        let o = convbn(&["predict", bad.to_str().unwrap()]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("not a readable PNG or JPEG"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn inspect_lists_blocks_and_the_parameter_count() {
    let o = convbn(&["inspect", "resnet50", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["parameters"], 25_557_032);
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 53);
    assert_eq!(blocks[0]["path"], "conv1");
    assert_eq!(blocks[0]["weight_shape"], serde_json::json!([64, 3, 7, 7]));
    assert!(blocks.iter().all(|b| b["mode"] == "eval"));

    let o = convbn(&["inspect", "mobilenet_v2", "--mode", "deploy"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("blocks.0.depthwise") && text.contains("deploy"),
        "{text}"
    );
    assert!(text.contains("52 ConvBN blocks"), "{text}");
}

#[test]
fn fetch_rejects_unknown_assets() {
    let o = convbn(&["fetch", "imagenet"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown asset 'imagenet'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn fetch_without_registry_access_says_what_to_do_and_caches_nothing() {
    let cache = std::env::temp_dir().join(format!("convbn-empty-cache-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_convbn"))
        .args(["fetch", "coffee"])
        .env("CONVBN_CACHE", &cache)
        .env("PATH", "/nonexistent") // no pip, no apt-get: as if no registry were reachable
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("fetching 'coffee' failed") && err.contains("PyPI is reachable"),
        "{err}"
    );
    assert!(!cache.join("coffee.png").exists(), "nothing cached");

    // Commands that need a missing asset fetch it on demand and report the same problem.
    let photo = std::env::temp_dir().join(format!("convbn-photo-{}.png", std::process::id()));
    std::fs::write(&photo, b"x").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_convbn"))
        .args(["predict", photo.to_str().unwrap()])
        .env("CONVBN_CACHE", &cache)
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("fetching 'mobilenet_v2' failed"),
        "{}",
        stderr(&o)
    );
}

/// `--device`: a backend the build lacks is an error naming its cargo feature; an unknown
/// name lists the known ones; no panic either way.
#[test]
fn device_names_are_checked() {
    for (args, needle) in [
        (
            vec!["inspect", "resnet18", "--device", "cuda:0"],
            "--features convbn-cli/cuda",
        ),
        (vec!["inspect", "resnet18", "--device", "gpu"], "wgpu:cpu"),
        (vec!["modes", "--device", "tpu"], "unexpected argument"),
        (
            vec!["bench", "--device", "wgpu:cpu", "--compare-pytorch"],
            "compares with --device cpu only",
        ),
    ] {
        let o = convbn(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

/// With the wgpu feature (the README's test command), `predict --device wgpu:cpu` runs the
/// pretrained models on burn's wgpu backend (a software adapter) with the CPU's answers.
#[cfg(feature = "wgpu")]
#[test]
fn predict_on_wgpu_gives_the_cpu_answer() {
    let coffee = cached("coffee").expect("coffee photo");
    let device = std::env::var("CONVBN_TEST_GPU").unwrap_or_else(|_| "wgpu:cpu".into());
    let mut probabilities = Vec::new();
    for d in ["cpu", device.as_str()] {
        let o = convbn(&[
            "predict", "--mode", "tune", "--format", "json", "--device", d, &coffee,
        ]);
        assert!(o.status.success(), "{d}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v[0]["top5"][0]["class_index"], 967, "{d}: {v}");
        probabilities.push(v[0]["top5"][0]["probability"].as_f64().unwrap());
    }
    assert!(
        (probabilities[0] - probabilities[1]).abs() < 1e-4,
        "{probabilities:?}"
    );
}
