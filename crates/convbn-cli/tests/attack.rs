//! `convbn attack` end to end.

mod common;

use common::{cached, convbn, stderr, stdout};

#[test]
fn attack_rejects_bad_input_clearly() {
    let dir = std::env::temp_dir().join(format!("convbn-attack-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.png");
    std::fs::write(&junk, b"not an image").unwrap();
    let j = junk.to_str().unwrap();
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["attack", "--eps", "2", j], "out of range"),
        (vec!["attack", "--eps", "1/0", j], "divides by zero"),
        (vec!["attack", "--target", "1000", j], "does not exist"),
        (vec!["attack", "--method", "cw", j], "unknown method"),
        (vec!["attack", "/no/such.png"], "does not exist"),
    ];
    for (args, needle) in cases {
        let o = convbn(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    if cached("mobilenet_v2").is_some() {
        let o = convbn(&["attack", j]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("junk.png"), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn pgd_on_the_photos_in_eval_and_tune_reports_json_and_images() {
    let (Some(_), Some(coffee), Some(cat)) =
        (cached("mobilenet_v2"), cached("coffee"), cached("chelsea"))
    else {
        return;
    };
    let out = std::env::temp_dir().join(format!("convbn-attack-{}", std::process::id()));
    for norm in ["linf", "l2"] {
        let eps = if norm == "linf" { "4/255" } else { "1.0" };
        let alpha = if norm == "linf" { "1/255" } else { "0.25" };
        let o = convbn(&[
            "attack",
            "--mode",
            "eval,tune",
            "--norm",
            norm,
            "--eps",
            eps,
            "--alpha",
            alpha,
            "--steps",
            "5",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
            &coffee,
            &cat,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 4, "2 images x 2 modes");
        let bound = if norm == "linf" { 4.0 / 255.0 } else { 1.0 };
        for r in results {
            let size = r[norm].as_f64().unwrap();
            assert!(size <= bound + 1e-5, "{norm} {size} > {bound}");
            assert_eq!(r["original_top5"].as_array().unwrap().len(), 5);
            assert_eq!(r["adversarial_top5"].as_array().unwrap().len(), 5);
            let png = image::open(r["adversarial_png"].as_str().unwrap()).unwrap();
            assert_eq!((png.width(), png.height()), (224, 224));
            assert!(std::path::Path::new(r["perturbation_png"].as_str().unwrap()).is_file());
        }
        let cmp = &v["comparisons"][0];
        assert_eq!(cmp["modes"][1], "tune");
        assert!(cmp["memory_ratio"].as_f64().unwrap() < 0.6, "{cmp}");
    }
}

/// `--precision f64`: Eval, Tune and Deploy give the same attack, to far below f32 rounding.
#[test]
fn in_f64_eval_tune_and_deploy_give_the_same_attack() {
    let (Some(_), Some(coffee)) = (cached("mobilenet_v2"), cached("coffee")) else {
        return;
    };
    let out = std::env::temp_dir().join(format!("convbn-attack-f64-{}", std::process::id()));
    let o = convbn(&[
        "attack",
        "--precision",
        "f64",
        "--mode",
        "eval,tune,deploy",
        "--steps",
        "10",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        &coffee,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["precision"], "f64");
    let comparisons = v["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 2, "eval vs tune, eval vs deploy");
    for cmp in comparisons {
        let gradient = cmp["first_gradient_rel_l2_max"].as_f64().unwrap();
        assert!(gradient <= 1e-4, "{cmp}");
        assert!(cmp["identical_pixels"].as_f64().unwrap() >= 0.99, "{cmp}");
        assert_eq!(cmp["same_outcome"], cmp["images"], "{cmp}");
    }
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["success"] == true)
    );
}
