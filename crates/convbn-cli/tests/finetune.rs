//! `convbn finetune`, `compare-modes` and `stability` end to end: outputs, a real kill and
//! resume, errors.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{cached, convbn, image_folder, stderr, stdout, temp};
use convbn::Mode;
use convbn_train::checkpoint::read;
use convbn_train::trainer::{checkpoint_file, log_file};

fn run_args<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "--data",
        data,
        "--weights",
        "random",
        "--size",
        "32",
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--lr",
        "0.01",
        "--checkpoint-every",
        "1",
        "--seed",
        "3",
        "--out",
        out,
    ]
}

#[test]
fn compare_modes_writes_table_json_chart_and_logs() {
    let root = temp("compare");
    let data = root.join("data");
    image_folder(&data, 3, 6);
    let out = root.join("run");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec![
        "compare-modes",
        "--modes",
        "eval,tune,deploy",
        "--format",
        "json",
    ];
    args.extend(run_args(d, o));
    let res = convbn(&args);
    assert!(res.status.success(), "{}", stderr(&res));
    let json: serde_json::Value = serde_json::from_str(&stdout(&res)).unwrap();
    assert_eq!(json["train_images"], 14, "18 images, 20% held out");
    assert_eq!(json["test_images"], 4);
    let modes = json["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 3);
    let field = |i: usize, k: &str| modes[i][k].as_f64().unwrap();
    for (i, m) in ["eval", "tune", "deploy"].iter().enumerate() {
        assert_eq!(modes[i]["mode"], *m);
        assert!(field(i, "median_step_ms") > 0.0);
        assert!((0.0..=1.0).contains(&field(i, "final_test_accuracy")));
    }
    // The counting allocator of the binary measured the iterations.
    assert!(field(1, "max_step_peak_bytes") < field(0, "max_step_peak_bytes"));
    assert_eq!(field(0, "memory_vs_eval"), 1.0);
    for f in ["summary.json", "summary.md", "curves.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let png = image::open(out.join("curves.png")).unwrap();
    assert_eq!((png.width(), png.height()), (1400, 1000));
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log_file(&out, Mode::Tune)).unwrap()).unwrap();
    assert_eq!(log["iterations"].as_array().unwrap().len(), 4);
    assert_eq!(log["epochs"][0]["test_images"], 4);
    let table = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        table.contains("| tune |") && table.contains("vs Eval"),
        "{table}"
    );
}

#[test]
fn a_killed_run_resumes_to_the_uninterrupted_result() {
    let root = temp("kill");
    let data = root.join("data");
    image_folder(&data, 4, 25);
    let (full, split) = (root.join("full"), root.join("split"));
    let d = data.to_str().unwrap();
    let mut args = vec!["finetune", "--mode", "tune"];
    args.extend(run_args(d, full.to_str().unwrap()));
    let res = convbn(&args);
    assert!(res.status.success(), "{}", stderr(&res));

    // Same run, killed (SIGKILL) once a few iterations are checkpointed.
    let mut args = vec!["finetune", "--mode", "tune"];
    args.extend(run_args(d, split.to_str().unwrap()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_convbn"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let iterations = |p: &Path| -> usize {
        std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["iterations"].as_array().map(Vec::len))
            .unwrap_or(0)
    };
    while iterations(&log_file(&split, Mode::Tune)) < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(start.elapsed() < Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at = read(&checkpoint_file(&split, Mode::Tune))
        .unwrap()
        .state
        .position;
    assert!(killed_at.step >= 3 && killed_at.step < 20, "{killed_at:?}");

    // Starting afresh is refused; resuming finishes the run.
    let again = convbn(&args);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--resume"), "{}", stderr(&again));
    args.push("--resume");
    let res = convbn(&args);
    assert!(res.status.success(), "{}", stderr(&res));
    assert!(
        stderr(&res).contains("resuming at iteration"),
        "{}",
        stderr(&res)
    );

    let (a, b) = (
        read(&checkpoint_file(&full, Mode::Tune)).unwrap(),
        read(&checkpoint_file(&split, Mode::Tune)).unwrap(),
    );
    assert_eq!(a.state.position.step, 20, "80 images, batch 4");
    assert_eq!(
        a.tensors().unwrap().tensors,
        b.tensors().unwrap().tensors,
        "final weights bit for bit"
    );
    assert_eq!(a.state.log.epochs, b.state.log.epochs);
}

#[test]
fn finetune_rejects_bad_input_clearly() {
    let root = temp("bad");
    let empty = root.join("empty");
    std::fs::create_dir_all(empty.join("a")).unwrap();
    std::fs::create_dir_all(empty.join("b")).unwrap();
    let cases: [(Vec<&str>, &str); 5] = [
        (
            vec!["finetune", "--data", "/no/such/folder"],
            "not a folder",
        ),
        (
            vec![
                "finetune",
                "--data",
                empty.to_str().unwrap(),
                "--weights",
                "random",
            ],
            "holds no PNG",
        ),
        (vec!["finetune", "--lr=-1"], "--lr"),
        (
            vec!["finetune", "--weights", "/no/such.pth"],
            "no such file",
        ),
        (
            vec!["compare-modes", "--modes", "tune,tune"],
            "listed twice",
        ),
    ];
    for (args, needle) in cases {
        let o = convbn(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

#[test]
fn stability_reports_the_scaling_coefficients_of_mobilenet_v2() {
    if cached("mobilenet_v2").is_none() {
        return;
    }
    let out = temp("stability");
    let o = convbn(&[
        "stability",
        "mobilenet_v2",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["blocks"], 52);
    // MobileNetV2's BN layers have 17,056 channels in all.
    assert_eq!(v["channels"], 17056);
    let (min, median, max) = (
        v["min"].as_f64().unwrap(),
        v["median"].as_f64().unwrap(),
        v["max"].as_f64().unwrap(),
    );
    assert!(0.0 < min && min < median && median < max);
    // Deploy's per-channel learning-rate factors span orders of magnitude.
    assert!(v["max_lr_factor"].as_f64().unwrap() / v["min_lr_factor"].as_f64().unwrap() > 1e4);
    let png = image::open(out.join("scales.png")).unwrap();
    assert_eq!(png.width(), 1000);
}

/// `--devices`: burn's Learner with two workers; its weights load into the model; and the
/// options this path refuses, refused with a message.
#[test]
fn finetune_on_two_devices_through_burns_learner() {
    let root = temp("devices");
    let data = root.join("data");
    image_folder(&data, 2, 8);
    let out = root.join("run");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["finetune", "--mode", "tune", "--devices", "cpu,cpu"];
    args.extend(run_args(d, o));
    args.extend(["--format", "json"]);
    let run = convbn(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    let v: serde_json::Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!(v["devices"], serde_json::json!(["cpu", "cpu"]));
    assert_eq!(v["steps"], 3, "12 training images, global batch 4");
    let accuracy = v["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    let weights = out.join("tune/model.safetensors");
    assert!(out.join("tune/summary.json").is_file() && weights.is_file());

    // The same run again is refused (no silent overwrite).
    let again = convbn(&args);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--overwrite"), "{}", stderr(&again));
    // The weights load strictly into a two-class MobileNetV2 (the reference PyTorch layout).
    let device = burn::tensor::Device::flex();
    let mut model = convbn_zoo::Model::new(convbn_zoo::Architecture::MobileNetV2, 2, &device);
    let checkpoint = convbn_zoo::checkpoint::Checkpoint::from_safetensors(&weights).unwrap();
    let naming = model.pytorch_naming();
    let report = convbn_zoo::load::load(
        &mut model,
        &checkpoint,
        &naming,
        convbn_zoo::load::LoadOptions::default(),
    )
    .expect("strict load");
    assert!(report.is_clean());

    let refused = root.join("refused");
    for (extra, needle) in [
        (
            vec!["--devices", "cpu,cpu", "--resume"],
            "no mid-run stop and resume",
        ),
        (
            vec!["--devices", "cpu,cpu", "--stop-after", "1"],
            "--stop-after",
        ),
        (vec!["--devices", "cpu,gpu"], "unknown device 'gpu'"),
        (vec!["--devices", "cpu,cpu", "--ddp"], "CUDA devices only"),
        (vec!["--ddp"], "--devices"),
        (vec!["--devices", "cpu,cpu,cpu"], "multiple of 3"),
        (vec!["--devices", "cpu", "--device", "wgpu:cpu"], "not both"),
    ] {
        let mut a = vec!["finetune"];
        a.extend(run_args(d, refused.to_str().unwrap()));
        a.extend(extra.iter().copied());
        let o = convbn(&a);
        assert!(!o.status.success(), "{extra:?}");
        assert!(stderr(&o).contains(needle), "{extra:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(&root);
}
