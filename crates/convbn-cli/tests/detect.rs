//! `convbn detect eval`: pycocotools' numbers from files, and clear errors on bad files.

mod common;

use common::{convbn, stderr, stdout};

fn fixture() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../convbn-detect/tests/fixtures/coco_eval_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Write the fixture's ground truth and `detections` to files; their paths.
fn files(tag: &str, detections: &serde_json::Value) -> (String, String) {
    let dir = std::env::temp_dir().join(format!("convbn-detect-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut gt = fixture();
    for key in ["detections", "stats", "stats_names", "generator", "seed"] {
        gt.as_object_mut().unwrap().remove(key);
    }
    let (g, d) = (dir.join("gt.json"), dir.join("dt.json"));
    std::fs::write(&g, gt.to_string()).unwrap();
    std::fs::write(&d, detections.to_string()).unwrap();
    (g.display().to_string(), d.display().to_string())
}

#[test]
fn scores_a_results_file_like_pycocotools() {
    let f = fixture();
    let (gt, dt) = files("ok", &f["detections"]);
    let o = convbn(&[
        "detect",
        "eval",
        "--coco-gt",
        &gt,
        "--coco-dt",
        &dt,
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let (ours, theirs) = (
        v["stats"].as_array().unwrap(),
        f["stats"].as_array().unwrap(),
    );
    assert_eq!(ours.len(), 12);
    for (a, b) in ours.iter().zip(theirs) {
        assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 1e-4);
    }
    let table = convbn(&["detect", "eval", "--coco-gt", &gt, "--coco-dt", &dt]);
    assert!(stdout(&table).contains("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all"));
}

#[test]
fn bad_files_give_clear_errors() {
    let f = fixture();
    let mut unknown_image = f["detections"].clone();
    unknown_image[0]["image_id"] = 999.into();
    let mut negative = f["detections"].clone();
    negative[1]["bbox"][2] = (-3.0).into();
    let mut unknown_category = f["detections"].clone();
    unknown_category[2]["category_id"] = 42.into();
    let cases = [
        (unknown_image, "image 999"),
        (negative, "width, height >= 0"),
        (unknown_category, "category 42"),
        (
            serde_json::json!({"not": "a list"}),
            "not a valid COCO results file",
        ),
    ];
    for (i, (detections, needle)) in cases.into_iter().enumerate() {
        let (gt, dt) = files(&format!("bad{i}"), &detections);
        let o = convbn(&["detect", "eval", "--coco-gt", &gt, "--coco-dt", &dt]);
        assert!(!o.status.success(), "case {i}");
        assert!(stderr(&o).contains(needle), "case {i}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "case {i}");
    }
    let o = convbn(&[
        "detect",
        "eval",
        "--coco-gt",
        "/nonexistent/gt.json",
        "--coco-dt",
        "x",
    ]);
    assert!(
        stderr(&o).contains("reading /nonexistent/gt.json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn trains_on_scenes_in_two_modes_then_draws_predictions() {
    if convbn_zoo::assets::for_test("fashion-mnist-train-images").is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("convbn-detect-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = dir.join("run");
    let run_s = run.display().to_string();
    let o = convbn(&[
        "detect",
        "train",
        "--data",
        "scenes",
        "--scenes-train",
        "16",
        "--scenes-test",
        "6",
        "--size",
        "64",
        "--channels",
        "16",
        "--batch-size",
        "8",
        "--epochs",
        "1",
        "--mode",
        "eval,tune",
        "--weights",
        "random",
        "--warmup",
        "1",
        "--out",
        &run_s,
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(summary["train_images"], 16);
    assert_eq!(summary["test_images"], 6);
    assert_eq!(summary["classes"].as_array().unwrap().len(), 10);
    assert_eq!(summary["baseline"].as_array().unwrap().len(), 12);
    let modes = summary["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 2);
    assert_eq!(modes[1]["mode"], "tune");
    assert!(modes[1]["memory_vs_eval"].as_f64().unwrap() > 0.0);
    for f in [
        "curves.png",
        "summary.json",
        "summary.md",
        "tune/log.json",
        "eval/checkpoint.safetensors",
    ] {
        assert!(run.join(f).is_file(), "{f} written");
    }

    // `detect eval --checkpoint` scores the saved model on its test scenes: the numbers of the
    // run's last evaluation; its COCO files give them again through `--coco-gt/--coco-dt`.
    let checkpoint = run
        .join("tune/checkpoint.safetensors")
        .display()
        .to_string();
    let coco = dir.join("coco").display().to_string();
    let o = convbn(&[
        "detect",
        "eval",
        "--checkpoint",
        &checkpoint,
        "--write-coco",
        &coco,
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let scored: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let stats: Vec<f64> = serde_json::from_value(scored["stats"].clone()).unwrap();
    let logged: Vec<f64> = serde_json::from_value(modes[1]["stats"].clone()).unwrap();
    for (a, b) in stats.iter().zip(&logged) {
        assert!((a - b).abs() < 1e-9, "{stats:?} vs {logged:?}");
    }
    assert_eq!(scored["baseline"].as_array().unwrap().len(), 12);
    let gt = format!("{coco}/gt.json");
    let dt = format!("{coco}/dt.json");
    let o = convbn(&[
        "detect",
        "eval",
        "--coco-gt",
        &gt,
        "--coco-dt",
        &dt,
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(again["stats"], scored["stats"]);

    // Predict on a file and on the first test scenes.
    let picture = dir.join("picture.png");
    image::RgbImage::from_pixel(90, 70, image::Rgb([30, 30, 30]))
        .save(&picture)
        .unwrap();
    let out = dir.join("predicted");
    let checkpoint = run
        .join("tune/checkpoint.safetensors")
        .display()
        .to_string();
    let o = convbn(&[
        "detect",
        "predict",
        "--checkpoint",
        &checkpoint,
        "--from-test",
        "2",
        "--score-threshold",
        "0.0",
        "--max-detections",
        "3",
        "--out",
        &out.display().to_string(),
        "--format",
        "json",
        &picture.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let results: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 3, "one file and two test scenes");
    for r in results {
        let drawn = std::path::Path::new(r["drawn"].as_str().unwrap());
        let png = image::open(drawn).unwrap();
        assert!(png.width() >= 512, "small images are enlarged for drawing");
        let dets = r["detections"].as_array().unwrap();
        assert_eq!(
            dets.len(),
            3,
            "score threshold 0 keeps --max-detections boxes"
        );
        for d in dets {
            let b: Vec<f64> = serde_json::from_value(d["bbox"].clone()).unwrap();
            assert!(b[0] <= b[2] && b[1] <= b[3]);
        }
    }
    // The file's boxes are in its own 90x70 pixels.
    for d in results[0]["detections"].as_array().unwrap() {
        let b: Vec<f64> = serde_json::from_value(d["bbox"].clone()).unwrap();
        assert!(b[2] <= 90.0 && b[3] <= 70.0, "{b:?}");
    }
    assert!(out.join("detections.json").is_file());

    // Two inputs with the same file stem get one drawing each.
    let (a, b) = (dir.join("a/good.png"), dir.join("b/good.png"));
    for p in [&a, &b] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(&picture, p).unwrap();
    }
    let out = dir.join("same-stems");
    let o = convbn(&[
        "detect",
        "predict",
        "--checkpoint",
        &checkpoint,
        "--out",
        &out.display().to_string(),
        "--format",
        "json",
        &a.display().to_string(),
        &b.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let results: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let drawn: Vec<&str> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["drawn"].as_str().unwrap())
        .collect();
    assert_eq!(drawn.len(), 2);
    assert_ne!(drawn[0], drawn[1], "one output file per input");
    assert!(drawn.iter().all(|d| std::path::Path::new(d).is_file()));
}

#[test]
fn training_options_are_checked_with_clear_errors() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--backbone", "vgg11_bn"],
            "cannot be a detection backbone",
        ),
        (&["--mode", "train"], "norm_eval"),
        (&["--size", "100"], "multiple of 32"),
        (&["--data", "coco"], "needs --coco-train"),
        (&["--weights", "/no/such.pth"], "no such file"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["detect", "train", "--out", "/tmp/convbn-never-written"];
        all.extend_from_slice(args);
        let o = convbn(&all);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
    }
    let o = convbn(&[
        "detect",
        "predict",
        "--checkpoint",
        "/no/such/checkpoint.safetensors",
        "x.png",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("checkpoint"), "{}", stderr(&o));
}
