//! Detection training on a small synthetic COCO dataset written to disk (no assets needed):
//! the COCO wiring, Eval == Tune, exact resume, bad annotations, and boxes that stay on their
//! objects through resizing and flipping.

mod common;

use burn::tensor::Device;
use common::{config, largest_relative_gap, losses, options, temp_dir};
use convbn::Mode;
use convbn_detect::boxes::Bbox;
use convbn_detect::train::augment::{Augmentation, Orientation};
use convbn_detect::train::batch::{images, normalization, targets};
use convbn_detect::train::data::load;
use convbn_detect::train::observer::Quiet;
use convbn_detect::train::{DetectConfig, DetectData, DetectTrain};
use convbn_train::RunOptions;
use serde_json::json;

#[test]
fn eval_and_tune_train_the_same_detector_and_resume_exactly() {
    let dir = temp_dir("lockstep");
    let config = config(&dir);
    let modes = [Mode::Eval, Mode::Tune];
    let device = Device::flex().autodiff();
    let full = DetectTrain::new(config.clone(), &modes, options(&dir.join("full")), &device)
        .unwrap()
        .run(&mut Quiet)
        .unwrap();
    assert_eq!(full[0].iterations.len(), 6, "12 images, batch 4, 2 epochs");
    assert_eq!(full[0].evaluations.len(), 2);
    for log in &full {
        assert!(log.summary.is_some());
        assert!(
            log.iterations
                .iter()
                .all(|r| r.loss.is_finite() && r.positives > 0)
        );
        let stats = log.evaluations[1].stats;
        assert!(stats.iter().all(|s| (-1.0..=1.0).contains(s)), "{stats:?}");
    }
    // f32: Tune's rounding differs from Eval's, so losses agree closely, not bit for bit.
    let gap = largest_relative_gap(&losses(&full[0]), &losses(&full[1]));
    assert!(gap <= 1e-3, "largest relative loss gap {gap:e}");

    // Stopped after 3 iterations and resumed in a new job: the same losses and COCO numbers.
    let split = dir.join("split");
    let stopped = RunOptions {
        stop_after: Some(3),
        ..options(&split)
    };
    let partial = DetectTrain::new(config.clone(), &modes, stopped, &device)
        .unwrap()
        .run(&mut Quiet)
        .unwrap();
    assert_eq!(partial[0].iterations.len(), 3);
    assert!(partial[0].summary.is_none());
    let resumed = DetectTrain::resume(config.clone(), &modes, options(&split), &device)
        .unwrap()
        .run(&mut Quiet)
        .unwrap();
    for (a, b) in full.iter().zip(&resumed) {
        assert_eq!(losses(a), losses(b), "{}", a.mode);
        assert_eq!(a.evaluations, b.evaluations, "{}", a.mode);
    }

    // Resuming with other options is refused, and so is a fresh run over the checkpoints.
    let other = DetectConfig {
        seed: 4,
        ..config.clone()
    };
    let err = DetectTrain::resume(other, &modes, options(&split), &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("other options"), "{err}");
    let err = DetectTrain::new(
        config.clone(),
        &modes,
        RunOptions {
            overwrite: false,
            ..options(&split)
        },
        &device,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn train_mode_is_refused_with_a_reason() {
    let dir = temp_dir("trainmode");
    let err = DetectTrain::new(
        config(&dir),
        &[Mode::Train],
        options(&dir),
        &Device::flex().autodiff(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("norm_eval") && err.contains("tune"), "{err}");
}

#[test]
fn resized_flipped_and_rotated_images_keep_their_boxes_on_the_objects() {
    let dir = temp_dir("flip");
    let set = load(&config(&dir), false).unwrap().train;
    assert_eq!(set.classes, ["red", "blue"]);
    let device = Device::flex();
    let (mean, std) = normalization();
    // The grey background (40) after normalisation; object pixels differ from it.
    let background: Vec<f32> = (0..3).map(|c| (40.0 / 255.0 - mean[c]) / std[c]).collect();
    for k in 0..8 {
        let a = Augmentation {
            orientation: Orientation {
                transpose: k & 1 == 1,
                hflip: k & 2 == 2,
                vflip: k & 4 == 4,
            },
            ..Augmentation::default()
        };
        let indices = [0usize, 1, 2];
        let x = images(&set, &indices, &[a; 3], &device);
        let values = x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let targets = targets(&set, &indices, &[a; 3]);
        for (n, &i) in indices.iter().enumerate() {
            let boxes: Vec<Bbox> = set
                .network_boxes(i)
                .into_iter()
                .map(|b| a.orientation.apply(b, 64.0))
                .collect();
            assert_eq!(boxes.len(), set.boxes[i].len());
            let at = |c: usize, x: usize, y: usize| values[((n * 3 + c) * 64 + y) * 64 + x];
            let lit = |x: usize, y: usize| {
                (0..3)
                    .map(|c| (at(c, x, y) - background[c]).abs())
                    .sum::<f32>()
                    > 0.5
            };
            for b in &boxes {
                // Resized 80 -> 64 horizontally: the box centre is on the object.
                let (cx, cy) = (
                    ((b.x1 + b.x2) / 2.0) as usize,
                    ((b.y1 + b.y2) / 2.0) as usize,
                );
                assert!(lit(cx, cy), "{a:?}: centre of {b:?} not on its object");
            }
            // Every lit pixel (allowing a pixel of blur from resizing) lies in some box.
            let inside = |x: usize, y: usize| {
                let (x, y) = (x as f64 + 0.5, y as f64 + 0.5);
                boxes.iter().any(|b| {
                    x >= b.x1 - 1.0 && x <= b.x2 + 1.0 && y >= b.y1 - 1.0 && y <= b.y2 + 1.0
                })
            };
            for y in 0..64 {
                for x in 0..64 {
                    if lit(x, y) {
                        assert!(inside(x, y), "{a:?}: lit ({x}, {y}) outside {boxes:?}");
                    }
                }
            }
            // The targets are computed from the moved boxes: positives only inside them.
            assert!(targets[n].labels.iter().any(Option::is_some));
        }
    }
}

#[test]
fn bad_annotations_are_errors_or_reported_and_skipped() {
    let dir = temp_dir("bad");
    let good = config(&dir);
    let DetectData::Coco { train, .. } = &good.data else {
        unreachable!()
    };
    let mut coco: serde_json::Value =
        serde_json::from_slice(&std::fs::read(train).unwrap()).unwrap();
    let anns = coco["annotations"].as_array_mut().unwrap();
    anns[0]["bbox"] = json!([70, 10, 30, 10]); // beyond the 80 px width
    anns[1]["bbox"] = json!([10, 10, -5, 10]); // negative width
    anns[2]["category_id"] = json!(9); // unknown category
    coco["images"].as_array_mut().unwrap()[3]["file_name"] = json!("missing.png");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&coco).unwrap()).unwrap();
    let with = |skip_invalid: bool| DetectConfig {
        data: match &good.data {
            DetectData::Coco {
                train_images,
                test,
                test_images,
                ..
            } => DetectData::Coco {
                train: bad.clone(),
                train_images: train_images.clone(),
                test: test.clone(),
                test_images: test_images.clone(),
            },
            _ => unreachable!(),
        },
        skip_invalid,
        ..good.clone()
    };
    let err = load(&with(false), false).err().unwrap().to_string();
    assert!(
        err.contains("bad.json: annotation 2") && err.contains("--skip-invalid"),
        "{err}"
    );
    let split = load(&with(true), false).unwrap();
    let skipped = split.train.skipped.join("\n");
    assert!(skipped.contains("outside the 80x64 image"), "{skipped}");
    assert!(skipped.contains("negative size"), "{skipped}");
    assert!(skipped.contains("unknown category id 9"), "{skipped}");
    assert!(skipped.contains("missing.png"), "{skipped}");
    assert_eq!(split.train.len(), 11);

    // A corrupt image file is an error naming it, or with --skip-invalid left out and
    // reported like the other problems.
    std::fs::write(dir.join("s1-img0.png"), b"not a png").unwrap();
    let err = load(&good, false).err().unwrap().to_string();
    assert!(
        err.contains("s1-img0.png") && err.contains("not a readable image"),
        "{err}"
    );
    let skipping = DetectConfig {
        skip_invalid: true,
        ..good.clone()
    };
    let split = load(&skipping, false).unwrap();
    let skipped = split.train.skipped.join("\n");
    assert!(
        skipped.contains("s1-img0.png") && skipped.contains("not a readable image"),
        "{skipped}"
    );
    assert_eq!(
        split.train.len(),
        11,
        "12 images, the unreadable one left out"
    );

    // File names that leave the images folder are refused, or skipped and reported.
    std::fs::copy(dir.join("s1-img1.png"), dir.join("s1-img0.png")).unwrap();
    let mut coco: serde_json::Value =
        serde_json::from_slice(&std::fs::read(train).unwrap()).unwrap();
    coco["images"].as_array_mut().unwrap()[3]["file_name"] = json!("../../etc/passwd");
    coco["images"].as_array_mut().unwrap()[4]["file_name"] = json!("/etc/passwd");
    std::fs::write(&bad, serde_json::to_vec(&coco).unwrap()).unwrap();
    let err = load(&with(false), false).err().unwrap().to_string();
    assert!(
        err.contains("'../../etc/passwd' is not a path inside the images folder"),
        "{err}"
    );
    let split = load(&with(true), false).unwrap();
    let skipped = split.train.skipped.join("\n");
    assert!(
        skipped.contains("'/etc/passwd' is not a path inside"),
        "{skipped}"
    );

    // A training set without a single object cannot train a detector.
    coco["annotations"] = json!([]);
    std::fs::write(&bad, serde_json::to_vec(&coco).unwrap()).unwrap();
    let err = load(&with(true), false).err().unwrap().to_string();
    assert!(err.contains("the training set has no objects"), "{err}");
}

#[test]
fn voc_folders_load_with_classes_from_the_training_annotations() {
    let dir = temp_dir("voc");
    let coco = config(&dir);
    let DetectData::Coco { train, test, .. } = &coco.data else {
        unreachable!()
    };
    // The synthetic COCO sets rewritten as one VOC XML per image (images beside them).
    let to_voc = |json: &std::path::Path, out: &std::path::Path| {
        std::fs::create_dir_all(out).unwrap();
        let c: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
        for image in c["images"].as_array().unwrap() {
            let file = image["file_name"].as_str().unwrap();
            std::fs::copy(dir.join(file), out.join(file)).unwrap();
            let mut objects = String::new();
            for a in c["annotations"].as_array().unwrap() {
                if a["image_id"] != image["id"] {
                    continue;
                }
                let b: Vec<f64> = serde_json::from_value(a["bbox"].clone()).unwrap();
                let name = if a["category_id"] == 1 { "red" } else { "blue" };
                objects += &format!(
                    "<object><name>{name}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin>\
                     <xmax>{}</xmax><ymax>{}</ymax></bndbox></object>",
                    b[0],
                    b[1],
                    b[0] + b[2],
                    b[1] + b[3]
                );
            }
            let xml = format!(
                "<annotation><filename>{file}</filename><size><width>80</width>\
                 <height>64</height><depth>3</depth></size>{objects}</annotation>"
            );
            std::fs::write(out.join(file.replace(".png", ".xml")), xml).unwrap();
        }
    };
    to_voc(train, &dir.join("voc-train"));
    to_voc(test, &dir.join("voc-test"));
    let voc = DetectConfig {
        data: DetectData::Voc {
            train: dir.join("voc-train"),
            test: dir.join("voc-test"),
        },
        ..coco.clone()
    };
    let (a, b) = (load(&coco, false).unwrap(), load(&voc, false).unwrap());
    // VOC classes are the training names sorted; COCO's follow the category ids.
    assert_eq!(b.train.classes, ["blue", "red"]);
    assert_eq!((b.train.len(), b.test.len()), (a.train.len(), a.test.len()));
    assert_eq!(b.train.objects(), a.train.objects());
    let renamed = |l: usize| 1 - l; // red 0 <-> 1, blue 1 <-> 0
    for i in 0..a.train.len() {
        let k = b
            .train
            .names
            .iter()
            .position(|n| *n == a.train.names[i])
            .unwrap();
        assert_eq!(a.train.boxes[i], b.train.boxes[k]);
        let mapped: Vec<usize> = a.train.labels[i].iter().map(|&l| renamed(l)).collect();
        assert_eq!(mapped, b.train.labels[k]);
    }
    // A folder without annotations is a clear error.
    let empty = DetectConfig {
        data: DetectData::Voc {
            train: dir.join("voc-train"),
            test: dir.join("nothing-here"),
        },
        ..coco
    };
    std::fs::create_dir_all(dir.join("nothing-here")).unwrap();
    let err = load(&empty, false).err().unwrap().to_string();
    assert!(err.contains("no .xml annotations"), "{err}");
}
