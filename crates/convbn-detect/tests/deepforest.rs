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
