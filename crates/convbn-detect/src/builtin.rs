//! The built-in detection datasets, from the project's cached assets.
//!
//! DeepForest's NEON aerial images (PyPI `deepforest==2.1.0`, MIT; `convbn fetch
//! deepforest`): four images with Pascal VOC boxes of tree crowns (class Tree; Alive and Dead
//! in SOAP_061). The two YELL crops train; OSBS_029 and SOAP_061 are held out for evaluation.

use std::path::PathBuf;

use convbn_zoo::assets::asset;

use crate::Result;
use crate::samples::{OnInvalid, Samples, from_voc};
use crate::voc::load_voc;

/// DeepForest's class names, by label.
pub const DEEPFOREST_CLASSES: [&str; 3] = ["Tree", "Alive", "Dead"];
/// The training images (file stems).
pub const DEEPFOREST_TRAIN: [&str; 2] = [
    "2019_YELL_2_528000_4978000_image_crop2",
    "2019_YELL_2_541000_4977000_image_crop",
];
/// The held-out images.
pub const DEEPFOREST_TEST: [&str; 2] = ["OSBS_029", "SOAP_061"];

/// The asset names of one image: its annotation and its picture (OSBS_029's annotation
/// names a GeoTIFF, the others PNGs).
pub fn deepforest_assets(stem: &str) -> [String; 2] {
    let ext = if stem == "OSBS_029" { "tif" } else { "png" };
    [
        format!("deepforest-{stem}.xml"),
        format!("deepforest-{stem}.{ext}"),
    ]
}

/// `(train, test)` samples, fetching the assets first when `fetch` is set.
pub fn deepforest(fetch: bool) -> Result<(Samples, Samples)> {
    let classes = DEEPFOREST_CLASSES.map(String::from);
    let load = |stems: &[&str]| -> Result<Samples> {
        let mut files = Vec::new();
        let mut dir = PathBuf::new();
        for stem in stems {
            let [xml, image] = deepforest_assets(stem);
            let get = |name: &str| -> Result<PathBuf> {
                let a = asset(name)?;
                Ok(if fetch { a.fetch()? } else { a.locate()? })
            };
            let (xml, image) = (get(&xml)?, get(&image)?);
            dir = image.parent().map(PathBuf::from).unwrap_or_default();
            files.push((xml.clone(), load_voc(&xml)?));
        }
        from_voc(&files, &dir, &classes, OnInvalid::Error)
    };
    Ok((load(&DEEPFOREST_TRAIN)?, load(&DEEPFOREST_TEST)?))
}
