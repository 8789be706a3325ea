//! DeepForest's annotated NEON aerial images (PyPI `deepforest==2.1.0`, fetched by
//! `convbn fetch deepforest`): all four VOC files read into samples without a problem.

use std::path::PathBuf;

use convbn_detect::samples::{OnInvalid, from_voc};
use convbn_detect::voc::load_voc;

const STEMS: [&str; 4] = [
    "2019_YELL_2_528000_4978000_image_crop2",
    "2019_YELL_2_541000_4977000_image_crop",
    "OSBS_029",
    "SOAP_061",
];

fn locate(name: &str) -> Option<PathBuf> {
    match convbn_zoo::assets::asset(name).and_then(|a| a.locate()) {
        Ok(p) => Some(p),
        Err(e) if std::env::var("CONVBN_REQUIRE_ASSETS").as_deref() == Ok("1") => {
            panic!("{e} (CONVBN_REQUIRE_ASSETS=1)")
        }
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

#[test]
fn the_four_annotated_images_hold_951_boxes() {
    let mut files = Vec::new();
    for stem in STEMS {
        // OSBS_029's annotation names its GeoTIFF; the others name PNGs.
        let ext = if stem == "OSBS_029" { "tif" } else { "png" };
        let (Some(xml), Some(_image)) = (
            locate(&format!("deepforest-{stem}.xml")),
            locate(&format!("deepforest-{stem}.{ext}")),
        ) else {
            return;
        };
        files.push((xml.clone(), load_voc(&xml).unwrap()));
    }
    let dir = files[0].0.parent().unwrap().to_path_buf();
    let classes = ["Tree", "Alive", "Dead"].map(String::from);
    let samples = from_voc(&files, &dir, &classes, OnInvalid::Error).unwrap();
    assert!(samples.skipped.is_empty());
    let boxes: usize = samples.samples.iter().map(|s| s.boxes.len()).sum();
    assert_eq!(boxes, 951);
    let per_class = |c: usize| {
        samples
            .samples
            .iter()
            .flat_map(|s| &s.labels)
            .filter(|&&l| l == c)
            .count()
    };
    assert_eq!([per_class(0), per_class(1), per_class(2)], [914, 9, 28]);
    for s in &samples.samples {
        let (w, h) = image::image_dimensions(&s.image).unwrap();
        assert_eq!((w, h), (s.width, s.height), "{}", s.image.display());
    }
}
