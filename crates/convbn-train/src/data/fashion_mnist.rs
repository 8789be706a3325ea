//! Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 60,000 training and 10,000 test greyscale
//! 28x28 images of 10 clothing classes, read from the project's cached IDX assets (Debian
//! `dataset-fashion-mnist`; `convbn fetch fashion-mnist`).

use std::path::Path;

use convbn_zoo::assets::asset;
use convbn_zoo::data::idx::read_idx;

use crate::TrainError;
use crate::data::{ImageSet, Split};

/// The 10 class names, by label.
pub const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Load both splits from the asset cache (fetching them first when `fetch` is set).
pub fn load(fetch: bool) -> Result<Split, TrainError> {
    let path = |name: &str| -> Result<std::path::PathBuf, TrainError> {
        let a = asset(name)?;
        Ok(if fetch { a.fetch()? } else { a.locate()? })
    };
    Ok(Split {
        train: read_pair(
            &path("fashion-mnist-train-images")?,
            &path("fashion-mnist-train-labels")?,
        )?,
        test: read_pair(
            &path("fashion-mnist-test-images")?,
            &path("fashion-mnist-test-labels")?,
        )?,
    })
}

/// Read an images file (`[n, h, w]`) and its labels file (`[n]`, values below 10).
pub fn read_pair(images: &Path, labels: &Path) -> Result<ImageSet, TrainError> {
    let img = read_idx(images)?;
    let lab = read_idx(labels)?;
    let [n, h, w] = img.dims[..] else {
        return Err(TrainError::Data(format!(
            "{}: expected images of shape [n, height, width], found {:?}",
            images.display(),
            img.dims
        )));
    };
    if lab.dims != [n] {
        return Err(TrainError::Data(format!(
            "{} holds {:?} labels for {n} images in {}",
            labels.display(),
            lab.dims,
            images.display()
        )));
    }
    let set = ImageSet {
        channels: 1,
        height: h,
        width: w,
        pixels: img.data,
        labels: lab.data.iter().map(|&l| l as usize).collect(),
        classes: CLASSES.iter().map(|s| s.to_string()).collect(),
    };
    set.check(&labels.display().to_string())?;
    Ok(set)
}
