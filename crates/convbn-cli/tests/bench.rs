//! `convbn bench` end to end on a small model: JSON fields, memory ordered
//! Deploy <= Tune < Eval, charts written, bad arguments refused; and, where a Python with
//! torch is installed (`bench/setup_pytorch.sh`), the PyTorch rows beside ours.

mod common;

use common::{convbn, stderr, stdout};
use serde_json::Value;

fn rows(json: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(json)
        .expect("bench prints JSON")
        .as_array()
        .expect("a JSON array")
        .clone()
}

fn retained(rows: &[Value], framework: &str, mode: &str) -> u64 {
    rows.iter()
        .find(|r| r["framework"] == framework && r["mode"] == mode)
        .unwrap_or_else(|| panic!("no {framework} {mode} row in {rows:?}"))["retained_bytes"]
        .as_u64()
        .expect("retained_bytes is a number")
}

#[test]
fn bench_prints_one_object_per_mode_with_ordered_memory_and_draws_charts() {
    let out = tempfile_dir("bench-smoke");
    let o = convbn(&[
        "bench",
        "--models",
        "resnet18",
        "--modes",
        "train,eval,tune,deploy",
        "--batch",
        "2",
        "--size",
        "32",
        "--steps",
        "2",
        "--warmup",
        "0",
        "--format",
        "json",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(o.status.success(), "bench failed: {}", stderr(&o));
    let saved = std::fs::read_to_string(out.join("bench.json")).expect("bench.json written");
    assert_eq!(rows(&saved).len(), 4, "bench.json holds the rows");
    let rows = rows(&stdout(&o));
    assert_eq!(rows.len(), 4, "one row per mode: {rows:?}");
    for r in &rows {
        for field in [
            "model",
            "mode",
            "batch",
            "size",
            "retained_bytes",
            "peak_bytes",
            "peak_rss_bytes",
            "step_ms_median",
        ] {
            assert!(!r[field].is_null(), "{field} missing in {r}");
        }
        assert_eq!(r["model"], "resnet18");
        assert_eq!(r["batch"], 2);
        assert_eq!(r["size"], 32);
        assert_eq!(r["step_ms"].as_array().map(Vec::len), Some(2));
        assert!(r["step_ms_median"].as_f64().is_some_and(|t| t > 0.0));
        assert!(r["peak_bytes"].as_u64() >= r["retained_bytes"].as_u64());
        #[cfg(target_os = "linux")]
        assert!(r["peak_rss_bytes"].as_u64().is_some_and(|b| b > 0));
    }
    let (eval, tune, deploy) = (
        retained(&rows, "convbn", "eval"),
        retained(&rows, "convbn", "tune"),
        retained(&rows, "convbn", "deploy"),
    );
    assert!(
        deploy <= tune && tune < eval,
        "retained bytes must be ordered deploy {deploy} <= tune {tune} < eval {eval}"
    );
    let png = std::fs::read(out.join("bench_resnet18.png")).expect("chart written");
    assert!(png.starts_with(b"\x89PNG"), "the chart is a PNG");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bench_rejects_bad_arguments_with_clear_messages() {
    let cases: [(&[&str], &str); 4] = [
        (&["bench", "--steps", "0"], "--steps"),
        (&["bench", "--batch", "0"], "positive"),
        (&["bench", "--models", "resnet5"], "unknown model"),
        (
            &[
                "bench", "--models", "resnet18", "--modes", "train", "--batch", "1", "--size",
                "32", "--steps", "1",
            ],
            "more than one value per channel",
        ),
    ];
    for (args, expected) in cases {
        let o = convbn(args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(
            stderr(&o).contains(expected),
            "{args:?}: expected {expected:?} in {}",
            stderr(&o)
        );
    }
}

#[test]
fn compare_pytorch_adds_pytorch_rows_and_pytorch_tune_keeps_more_than_ours() {
    let probe = convbn(&[
        "bench",
        "--compare-pytorch",
        "--models",
        "resnet18",
        "--modes",
        "eval,tune",
        "--batch",
        "2",
        "--size",
        "32",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--format",
        "json",
        "--out",
        tempfile_dir("bench-pytorch").to_str().expect("utf-8 path"),
    ]);
    if !probe.status.success() && stderr(&probe).contains("cannot import torch") {
        eprintln!("SKIPPED: no Python with torch; install it with bench/setup_pytorch.sh");
        return;
    }
    assert!(probe.status.success(), "bench failed: {}", stderr(&probe));
    let rows = rows(&stdout(&probe));
    assert_eq!(rows.len(), 4, "ours and PyTorch's eval and tune: {rows:?}");
    let ours = retained(&rows, "convbn", "tune");
    let theirs = retained(&rows, "pytorch", "tune");
    // (At this tiny size PyTorch's tune mode even keeps more than its eval mode: W' of every
    // block outweighs the small feature maps.)
    assert!(
        ours < theirs,
        "ours keeps X only, PyTorch's tune mode keeps W' as well: ours {ours} vs {theirs}"
    );
}

/// A fresh folder under the system's temporary directory.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("convbn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
