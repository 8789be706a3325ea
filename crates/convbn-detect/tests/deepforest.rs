//! DeepForest's annotated NEON aerial images (PyPI `deepforest==2.1.0`, fetched by
//! `convbn fetch deepforest`): read into samples without a problem, split, and tiled.

use convbn_detect::builtin::{DEEPFOREST_TEST, DEEPFOREST_TRAIN, deepforest, deepforest_assets};
use convbn_detect::tiles::{TileConfig, tiles};

fn assets_present() -> bool {
    DEEPFOREST_TRAIN
        .iter()
        .chain(&DEEPFOREST_TEST)
        .flat_map(|s| deepforest_assets(s))
        .all(|name| convbn_zoo::assets::for_test(&name).is_some())
}

#[test]
fn the_four_annotated_images_hold_951_boxes_and_tile() {
    if !assets_present() {
        return;
    }
    let (train, test) = deepforest(false).unwrap();
    assert!(train.skipped.is_empty() && test.skipped.is_empty());
    let count = |s: &convbn_detect::samples::Samples, c: Option<usize>| -> usize {
        s.samples
            .iter()
            .flat_map(|x| &x.labels)
            .filter(|&&l| c.is_none_or(|c| l == c))
            .count()
    };
    assert_eq!(count(&train, None) + count(&test, None), 951);
    let per_class: Vec<usize> = (0..3)
        .map(|c| count(&train, Some(c)) + count(&test, Some(c)))
        .collect();
    assert_eq!(per_class, [914, 9, 28]);
    let held_out: Vec<String> = test
        .samples
        .iter()
        .map(|s| s.image.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(held_out, DEEPFOREST_TEST);
    for s in train.samples.iter().chain(&test.samples) {
        let (w, h) = image::image_dimensions(&s.image).unwrap();
        assert_eq!((w, h), (s.width, s.height), "{}", s.image.display());
    }
    // Tiles of the training images: inside their tile, and most boxes survive (overlapping
    // tiles hold some twice).
    let config = TileConfig::default();
    let mut kept = 0;
    for s in &train.samples {
        for t in tiles(s, &config) {
            for b in &t.boxes {
                assert!(b.x1 >= 0.0 && b.y1 >= 0.0);
                assert!(b.x2 <= f64::from(t.width) && b.y2 <= f64::from(t.height));
            }
            kept += t.boxes.len();
        }
    }
    println!("{} training boxes, {kept} in tiles", count(&train, None));
    assert!(kept >= count(&train, None));
}

#[test]
fn the_built_in_tree_split_is_one_class_of_crowns_in_tiles() {
    if !assets_present() {
        return;
    }
    let config = convbn_detect::train::DetectConfig {
        data: convbn_detect::train::DetectData::Trees,
        size: 256,
        ..common_config()
    };
    let split = convbn_detect::train::data::load(&config, false).unwrap();
    assert_eq!(split.train.classes, ["Tree"]);
    assert_eq!(split.test.classes, ["Tree"]);
    // 151 overlapping tiles of the two YELL crops, 8 of the two 400x400 held-out images.
    assert_eq!((split.train.len(), split.test.len()), (151, 8));
    assert_eq!((split.train.objects(), split.test.objects()), (1230, 153));
    assert!(split.test.labels.iter().flatten().all(|&l| l == 0));
    assert!(split.test.sizes.iter().all(|&s| s == (256, 256)));
}

fn common_config() -> convbn_detect::train::DetectConfig {
    use convbn_train::{OptimizerConfig, OptimizerKind, Schedule, Start};
    convbn_detect::train::DetectConfig {
        data: convbn_detect::train::DetectData::Trees,
        skip_invalid: false,
        backbone: "mobilenet_v2".into(),
        start: Start::Random,
        size: 256,
        channels: 16,
        batch_size: 4,
        epochs: 1,
        train_limit: None,
        test_limit: None,
        augment: convbn_detect::train::augment::Augment::Aerial,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 0.0,
        },
        schedule: Schedule::Constant,
        seed: 0,
        eval_batch_size: 4,
    }
}
