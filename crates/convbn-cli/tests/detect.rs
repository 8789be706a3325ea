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
