//! Bring your own data: a folder with one sub-folder of PNG/JPEG images per class
//! (`root/cat/001.png`, `root/dog/xyz.jpg`, ...), as torchvision's `ImageFolder`.
//!
//! Images are decoded once, their shorter side resized to the stored size and centre-cropped,
//! and kept in memory as 8-bit RGB.

use std::path::{Path, PathBuf};

use crate::TrainError;
use crate::data::{ImageSet, Split};
use crate::rng::Rng;

/// File extensions read as images.
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The class folders (sorted by name) and their image files (sorted by name).
pub fn scan(root: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, TrainError> {
    let read = |dir: &Path| -> Result<Vec<PathBuf>, TrainError> {
        let mut entries = std::fs::read_dir(dir)
            .map_err(|e| TrainError::Data(format!("cannot read folder {}: {e}", dir.display())))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TrainError::Data(format!("cannot read folder {}: {e}", dir.display())))?;
        entries.sort();
        Ok(entries)
    };
    let mut classes = Vec::new();
    for dir in read(root)?.into_iter().filter(|p| p.is_dir()) {
        let images: Vec<PathBuf> = read(&dir)?
            .into_iter()
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if images.is_empty() {
            return Err(TrainError::Data(format!(
                "class folder {} holds no PNG or JPEG image; remove it or add images",
                dir.display()
            )));
        }
        classes.push((name, images));
    }
    if classes.len() < 2 {
        return Err(TrainError::Data(format!(
            "{} must hold one sub-folder of images per class (at least 2 classes), found {}",
            root.display(),
            classes.len()
        )));
    }
    Ok(classes)
}

/// Decode every image of `root`, stored at `size` x `size` RGB.
pub fn load(root: &Path, size: u32) -> Result<ImageSet, TrainError> {
    let classes = scan(root)?;
    let mut set = ImageSet {
        channels: 3,
        height: size as usize,
        width: size as usize,
        pixels: Vec::new(),
        labels: Vec::new(),
        classes: classes.iter().map(|(n, _)| n.clone()).collect(),
    };
    for (label, (_, files)) in classes.iter().enumerate() {
        for file in files {
            let img = convbn_zoo::image::open_rgb(file)?;
            let img = convbn_zoo::image::resize_center_crop(&img, size, size)
                .ok_or_else(|| TrainError::Data(format!("{} is an empty image", file.display())))?;
            let (w, h) = (size as usize, size as usize);
            let start = set.pixels.len();
            set.pixels.resize(start + 3 * h * w, 0);
            for (x, y, p) in img.enumerate_pixels() {
                for c in 0..3 {
                    set.pixels[start + c * h * w + y as usize * w + x as usize] = p[c];
                }
            }
            set.labels.push(label);
        }
    }
    Ok(set)
}

/// Training and test sets from folders: `test` when given, otherwise a seeded random
/// `test_fraction` of `train` held out.
pub fn load_split(
    train: &Path,
    test: Option<&Path>,
    test_fraction: f64,
    size: u32,
    seed: u64,
) -> Result<Split, TrainError> {
    let all = load(train, size)?;
    if let Some(test) = test {
        let split = Split {
            train: all,
            test: load(test, size)?,
        };
        split.check()?;
        return Ok(split);
    }
    if !(0.0..1.0).contains(&test_fraction) || test_fraction == 0.0 {
        return Err(TrainError::Config(format!(
            "--test-fraction must be in (0, 1), got {test_fraction}"
        )));
    }
    let order = Rng::new(&[seed, 0xF01D]).permutation(all.len());
    let n_test = ((all.len() as f64 * test_fraction).round() as usize).clamp(1, all.len() - 1);
    let pick = |idx: &[usize]| {
        let mut s = ImageSet {
            pixels: Vec::with_capacity(idx.len() * all.image_len()),
            labels: Vec::with_capacity(idx.len()),
            ..all.clone_empty()
        };
        for &i in idx {
            s.pixels.extend_from_slice(all.image(i));
            s.labels.push(all.labels[i]);
        }
        s
    };
    let split = Split {
        test: pick(&order[..n_test]),
        train: pick(&order[n_test..]),
    };
    split.check()?;
    Ok(split)
}

impl ImageSet {
    /// The same format and classes with no image.
    fn clone_empty(&self) -> ImageSet {
        ImageSet {
            channels: self.channels,
            height: self.height,
            width: self.width,
            pixels: Vec::new(),
            labels: Vec::new(),
            classes: self.classes.clone(),
        }
    }
}
