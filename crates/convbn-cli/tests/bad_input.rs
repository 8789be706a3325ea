//! Bad input to the release CLI: every case must end with exit code 1 and a message naming the
//! problem — never a panic (101), an allocation abort (SIGABRT) or exit 0 with wrong or lost
//! output. Commands run under an address-space limit (`setrlimit(RLIMIT_AS)`), so a regression
//! that tries to allocate gigabytes fails here instead of eating the machine.
//!
//! The bad PyTorch checkpoints are committed (under 2 KB each), written by
//! `crates/convbn-zoo/tests/fixtures/make_bad_pth.py`; the other bad files are made here.
//! `CONVBN_BIN=/path/to/convbn` runs the cases against another build (to show that they fail
//! on a build without the fixes).

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use common::{stderr, stdout, temp};
use convbn_zoo::checkpoint::Checkpoint;
use convbn_zoo::load::to_checkpoint;
use convbn_zoo::{Architecture, Model};

/// Address space a command may map: far below what the bad files ask for (9 to 20 GiB),
/// well above what the commands need (a MobileNetV2 is 14 MB).
const ADDRESS_SPACE: u64 = 4 << 30;

fn limited(args: &[&str]) -> Command {
    let bin = std::env::var("CONVBN_BIN").unwrap_or(env!("CARGO_BIN_EXE_convbn").into());
    let mut cmd = Command::new(bin);
    cmd.args(args);
    // SAFETY: setrlimit is async-signal-safe; it only limits the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    limited(args).output().expect("run convbn")
}

/// Assert that `convbn args` failed cleanly (exit 1, no panic) with every one of `needles`
/// in its message; returns the message.
#[track_caller]
fn refused(args: &[&str], needles: &[&str]) -> String {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "convbn {args:?} must fail with exit 1 (status {:?}):\n{err}",
        o.status
    );
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: message lacks '{n}':\n{err}");
    }
    err
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn bad_pth(name: &str) -> String {
    format!(
        "{}/../convbn-zoo/tests/fixtures/bad/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn picture(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, 90])
    })
    .save(&path)
    .unwrap();
    s(&path)
}

/// A random MobileNetV2 in torchvision's key layout, as a checkpoint to edit.
fn mobilenet_checkpoint() -> Checkpoint {
    let model = Model::new(Architecture::MobileNetV2, 1000, &Device::flex());
    to_checkpoint(&model, &model.pytorch_naming())
}

#[test]
fn checkpoints_that_declare_huge_tensors_are_refused_before_their_data_is_read() {
    let dir = temp("huge");
    let img = picture(&dir, "x.png");
    let predict = |file: &str| {
        vec![
            "predict".to_string(),
            "--weights".into(),
            file.to_string(),
            img.clone(),
        ]
    };
    let cases = [
        // 9.3 GiB from 715 bytes: shape checked against the model's [32, 3, 3, 3] first.
        (
            "zero_stride_zip.pth",
            vec!["shape mismatches", "features.0.0.weight"],
        ),
        (
            "zero_stride_legacy.pth",
            vec!["shape mismatches", "[50000, 50000]"],
        ),
        // 20 x 1 GiB: none of them is a key of the model, so none is read.
        ("twenty_gib_zip.pth", vec!["unexpected keys", "t0", "t19"]),
        ("negative_shape_zip.pth", vec!["corrupted"]),
        ("overflow_shape_zip.pth", vec!["corrupted"]),
    ];
    for (file, needles) in cases {
        let args = predict(&bad_pth(file));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, &needles);
    }
}

#[test]
fn safetensors_checkpoints_bad_or_non_finite_are_refused_and_model_prefixes_unwrapped() {
    let dir = temp("st");
    let img = picture(&dir, "x.png");
    let good = mobilenet_checkpoint();

    let mut nan = good.clone();
    nan.tensors.get_mut("features.0.0.weight").unwrap().values[5] = f32::NAN;
    nan.tensors.get_mut("classifier.1.bias").unwrap().values[0] = f32::INFINITY;
    let nan_file = dir.join("nan.safetensors");
    nan.save_safetensors(&nan_file).unwrap();
    refused(
        &["predict", "--weights", &s(&nan_file), &img],
        &[
            "non-finite parameters",
            "features.0.0.weight: 1 of 864 values are NaN or infinite",
            "classifier.1.bias",
        ],
    );

    // Keys under `model.` load like the bare ones (as for `.pth`).
    let mut prefixed = Checkpoint::default();
    for (k, v) in &good.tensors {
        prefixed.tensors.insert(format!("model.{k}"), v.clone());
    }
    let prefixed_file = dir.join("prefixed.safetensors");
    prefixed.save_safetensors(&prefixed_file).unwrap();
    let o = run(&["predict", "--weights", &s(&prefixed_file), &img]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A header that starts with a space: named as a bad safetensors file.
    let bytes = std::fs::read(&prefixed_file).unwrap();
    let mut spaced = bytes.clone();
    let n = u64::from_le_bytes(spaced[..8].try_into().unwrap()) as usize;
    spaced.insert(8, b' ');
    spaced.remove(8 + n); // keep the length: drop the header's last padding byte
    let spaced_file = dir.join("spaced.safetensors");
    std::fs::write(&spaced_file, &spaced).unwrap();
    let err = refused(
        &["predict", "--weights", &s(&spaced_file), &img],
        &["safetensors header must start with '{'"],
    );
    assert!(!err.contains("PyTorch"), "{err}");

    // Cut in half: the header's offsets point past the end.
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &["predict", "--weights", &s(&cut), &img],
        &["corrupted", "data section"],
    );

    // A header length far beyond the file.
    let mut claim = bytes[..64].to_vec();
    claim[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let claim_file = dir.join("claim.safetensors");
    std::fs::write(&claim_file, &claim).unwrap();
    refused(
        &["predict", "--weights", &s(&claim_file), &img],
        &[
            "corrupted",
            "safetensors header of 1099511627776 bytes in a 64-byte file",
        ],
    );

    // Not a checkpoint at all; a missing file's I/O error is said once.
    let text = dir.join("notes.pth");
    std::fs::write(&text, "these are notes, not weights").unwrap();
    refused(&["predict", "--weights", &s(&text), &img], &["corrupted"]);
    let err = refused(
        &["predict", "--weights", &s(&dir.join("none.pth")), &img],
        &["none.pth"],
    );
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the I/O error is not repeated: {err}"
    );
    assert!(!err.contains("--partial"), "no such flag: {err}");
}

#[test]
fn sizes_no_machine_can_hold_are_refused_with_the_estimate() {
    let needs = ["needs about", "is available"];
    refused(&["bench-block", "--size", "100000", "--steps", "1"], &needs);
    refused(&["bench-block", "--size", "3000", "--steps", "1"], &needs);
    refused(
        &[
            "bench",
            "--models",
            "mobilenet_v2",
            "--batch",
            "1",
            "--size",
            "100000",
        ],
        &[
            "bench mobilenet_v2 at batch 1, 100000x100000",
            "needs about",
        ],
    );
    refused(
        &[
            "bench-block",
            "--size",
            "4294967296",
            "--batch",
            "1",
            "--channels",
            "1",
            "--blocks",
            "1",
        ],
        &["overflow"],
    );
    refused(
        &["modes", "--size", "0", "--kernel", "5", "--stride", "2"],
        &["smaller than the --kernel"],
    );
    refused(
        &[
            "modes",
            "--size",
            "4294967296",
            "--in-channels",
            "4294967296",
        ],
        &["overflow"],
    );
    let (_, data, out) = folder_run("sizes", 4);
    // A folder dataset is held at the network's size; Fashion-MNIST at 28x28, so there the
    // network alone is refused.
    for (data_args, needle) in [
        (
            vec!["--data", data.as_str()],
            "fine-tuning mobilenet_v2's images at 100000x100000",
        ),
        (
            vec![],
            "fine-tuning mobilenet_v2 at batch 32, 100000x100000",
        ),
    ] {
        let mut args = vec![
            "finetune",
            "--weights",
            "random",
            "--size",
            "100000",
            "--out",
            &out,
        ];
        args.extend(data_args);
        refused(&args, &[needle, "needs about"]);
    }
    // A batch larger than the data set is as large as the data set: no refusal.
    let batch = "finetune --weights random --size 32 --batch-size 100000000000 --data";
    let mut args: Vec<&str> = batch.split(' ').collect();
    args.extend([data.as_str(), "--out", out.as_str()]);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    for (option, needle) in [
        ("--size", "detection training"),
        ("--channels", "--channels 100000"),
    ] {
        let detect = "detect train --data scenes --weights random --out";
        let mut args: Vec<&str> = detect.split(' ').collect();
        args.extend([out.as_str(), option, "100000"]);
        refused(&args, &[needle, "needs about"]);
    }
}

/// A folder of two classes of 20x20 PNGs, `per_class` each.
fn two_class_folder(root: &Path, per_class: u32) {
    for c in 0..2u32 {
        let dir = root.join(format!("c{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            image::RgbImage::from_fn(20, 20, |x, y| {
                let v = if (x < 10) == (c == 0) { 200 } else { 30 };
                image::Rgb([v, (v as u32 + i * 7 + y) as u8, v])
            })
            .save(dir.join(format!("{i:03}.png")))
            .unwrap();
        }
    }
}

/// A scratch directory with a two-class image folder of `per_class` images: `(dir, data, out)`.
fn folder_run(name: &str, per_class: u32) -> (PathBuf, String, String) {
    let dir = temp(name);
    two_class_folder(&dir.join("data"), per_class);
    let (data, out) = (s(&dir.join("data")), s(&dir.join("run")));
    (dir, data, out)
}

fn finetune_args<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let quick = "finetune --weights random --size 32 --batch-size 4 --seed 1";
    let mut args: Vec<&str> = quick.split(' ').collect();
    args.extend(["--data", data, "--out", out]);
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_loss_that_becomes_nan_stops_with_an_error_and_keeps_finite_weights() {
    let (dir, data, out) = folder_run("nan", 8);
    let args = finetune_args(
        &data,
        &out,
        &[
            "--mode",
            "deploy",
            "--lr",
            "1e30",
            "--epochs",
            "3",
            "--checkpoint-every",
            "1",
        ],
    );
    refused(
        &args,
        &[
            "NaN or infinite",
            "deploy at iteration",
            "last finite weights",
        ],
    );
    let saved = convbn_train::checkpoint::read(&dir.join("run/deploy/checkpoint.safetensors"))
        .expect("the checkpoint is readable");
    let tensors = saved.tensors().unwrap();
    for (name, t) in &tensors.tensors {
        assert!(
            t.values.iter().all(|v| v.is_finite()),
            "{name} holds NaN/inf"
        );
    }
    let log = &saved.state.log;
    let bad = log
        .iterations
        .iter()
        .filter(|i| !i.loss.is_finite())
        .count();
    assert_eq!(bad, 1, "training stops at the first non-finite loss");
    assert!(
        log.iterations.len() < 12,
        "the run ended early: {} iterations",
        log.iterations.len()
    );
}

#[test]
fn two_runs_on_one_directory_cannot_both_write_it() {
    let (dir, data, out) = folder_run("lock", 40);
    let args = finetune_args(&data, &out, &["--mode", "tune", "--epochs", "4"]);
    let mut first = limited(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run has prepared its mode's directory (it holds the lock by then;
    // a build without the lock lets the second run start here too).
    let prepared = dir.join("run/tune");
    let start = Instant::now();
    while !prepared.is_dir() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the first run did not start"
        );
        assert!(first.try_wait().unwrap().is_none(), "first run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = args
        .iter()
        .copied()
        .chain(["--overwrite"])
        .collect::<Vec<_>>();
    refused(
        &second,
        &["in use by another convbn run", "choose another --out"],
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run was still running when the second was refused"
    );
    let status = first.wait().unwrap();
    assert!(status.success(), "the first run finishes undisturbed");
}

#[test]
fn a_later_mode_joins_the_summary_and_a_run_with_other_options_is_refused() {
    let (dir, data, out) = folder_run("summary", 4);
    // A temporary file a killed writer left behind is removed at the start.
    let stale = dir.join("run/eval/.checkpoint.safetensors.partial-4194311");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    for mode in ["tune", "eval"] {
        let args = finetune_args(&data, &out, &["--mode", mode, "--format", "json"]);
        let o = run(&args);
        assert!(o.status.success(), "{mode}: {}", stderr(&o));
    }
    assert!(!stale.exists(), "stale partial removed");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run/summary.json")).unwrap()).unwrap();
    let modes: Vec<&str> = summary["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["eval", "tune"], "every mode present is summarised");
    let md = std::fs::read_to_string(dir.join("run/summary.md")).unwrap();
    assert!(md.contains("| tune |") && md.contains("| eval |"), "{md}");
    let args = finetune_args(&data, &out, &["--mode", "deploy", "--lr", "0.5"]);
    refused(&args, &["made with other options"]);
}

#[test]
fn options_that_make_no_sense_are_refused_by_name() {
    let dir = temp("options");
    let img = picture(&dir, "x.png");
    refused(&["predict", "--top", "0", &img], &["--top 0"]);
    refused(
        &["attack", "--mode", "train", &img],
        &["--mode train is not an attack mode"],
    );
    refused(
        &[
            "detect",
            "predict",
            "--checkpoint",
            "none.safetensors",
            "--score-threshold",
            "nan",
            &img,
        ],
        &["--score-threshold NaN must be a number between 0 and 1"],
    );
    let (_, data, out) = folder_run("options-run", 2);
    refused(
        &finetune_args(&data, &out, &["--eval-batch-size", "0"]),
        &["--eval-batch-size must be at least 1"],
    );
}

#[test]
fn run_checkpoints_of_the_wrong_kind_or_corrupt_are_named_as_such() {
    let (dir, data, out) = folder_run("kind", 2);
    let o = run(&finetune_args(&data, &out, &["--mode", "tune"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let checkpoint = s(&dir.join("run/tune/checkpoint.safetensors"));
    let img = picture(&dir, "x.png");
    let err = refused(
        &["detect", "predict", "--checkpoint", &checkpoint, &img],
        &["is a fine-tuning checkpoint", "not a detection checkpoint"],
    );
    assert!(!err.contains("--resume"), "{err}");
    let bytes = std::fs::read(&checkpoint).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let err = refused(
        &["detect", "predict", "--checkpoint", &s(&cut), &img],
        &["not a usable checkpoint of a detection run"],
    );
    assert!(!err.contains("--resume"), "{err}");
    // Resuming from it says how to go on.
    std::fs::write(&checkpoint, &bytes[..bytes.len() - 100]).unwrap();
    refused(
        &finetune_args(&data, &out, &["--mode", "tune", "--resume"]),
        &[
            "not a usable checkpoint of a fine-tuning run",
            "without --resume",
        ],
    );
}

#[test]
fn attack_writes_one_output_per_input_even_when_file_stems_repeat() {
    let dir = temp("stems");
    let a = picture(&dir, "a/good.png");
    let b = picture(&dir, "b/good.jpg");
    let weights = dir.join("random.safetensors");
    mobilenet_checkpoint().save_safetensors(&weights).unwrap();
    let out = dir.join("out");
    let o = run(&[
        "attack",
        "--weights",
        &s(&weights),
        "--method",
        "fgsm",
        "--mode",
        "tune",
        "--out",
        &s(&out),
        "--format",
        "json",
        &a,
        &b,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let images = report["results"].as_array().unwrap();
    let pngs: Vec<&str> = images
        .iter()
        .map(|i| i["adversarial_png"].as_str().unwrap())
        .collect();
    assert_eq!(pngs.len(), 2);
    assert_ne!(pngs[0], pngs[1], "two inputs, two files");
    for p in pngs {
        assert!(Path::new(p).is_file(), "{p}");
    }
}

/// The temporary files left in `dir` and its sub-folders.
fn partials(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(partials(&path));
        } else if path.to_string_lossy().contains(".partial-") {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_checkpoint_write_that_fails_for_lack_of_space_leaves_no_partial_file() {
    let (dir, data, out) = folder_run("full", 4);
    let args = finetune_args(&data, &out, &["--mode", "tune", "--checkpoint-every", "1"]);
    // A file-size limit of 1 MB stands in for a full disk: writing the 9 MB checkpoint fails
    // with EFBIG (SIGXFSZ ignored, as a full disk raises no signal either).
    let mut cmd = limited(&args);
    // SAFETY: setrlimit and signal are async-signal-safe; they only affect the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("checkpoint.safetensors"), "{err}");
    assert!(
        partials(&dir.join("run")).is_empty(),
        "{:?}",
        partials(&dir.join("run"))
    );
    // Once there is room again, a new run in the same directory goes through.
    let o = run(&finetune_args(
        &data,
        &out,
        &["--mode", "tune", "--overwrite"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(partials(&dir.join("run")).is_empty());
}

#[test]
fn a_checkpoint_that_cannot_be_renamed_into_place_leaves_no_partial_file() {
    let (dir, data, out) = folder_run("rename", 4);
    // A non-empty directory where the checkpoint goes: the rename fails after the data is
    // written and synced.
    std::fs::create_dir_all(dir.join("run/tune/checkpoint.safetensors/x")).unwrap();
    refused(
        &finetune_args(&data, &out, &["--mode", "tune", "--overwrite"]),
        &["checkpoint.safetensors"],
    );
    assert!(
        partials(&dir.join("run")).is_empty(),
        "{:?}",
        partials(&dir.join("run"))
    );
}

#[test]
fn voc_xml_nested_thousands_deep_is_refused_not_a_stack_overflow() {
    let dir = temp("voc");
    let deep = format!("{}{}", "<a>".repeat(20_000), "</a>".repeat(20_000));
    for split in ["train", "test"] {
        std::fs::create_dir_all(dir.join(split)).unwrap();
        std::fs::write(dir.join(split).join("deep.xml"), &deep).unwrap();
    }
    let (train, test, out) = (
        s(&dir.join("train")),
        s(&dir.join("test")),
        s(&dir.join("run")),
    );
    refused(
        &[
            "detect",
            "train",
            "--data",
            "voc",
            "--voc-train",
            &train,
            "--voc-test",
            &test,
            "--weights",
            "random",
            "--out",
            &out,
        ],
        &["deep.xml", "nested 257 deep"],
    );
}
