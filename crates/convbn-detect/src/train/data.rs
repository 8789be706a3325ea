//! Annotated images held in memory at the network's input size: the pixels resized to
//! `size` x `size` (an [`ImageSet`], so the classification transform renders them), the boxes
//! in the source image's own coordinates (evaluation and predictions use those), and the
//! scale between the two.

use std::path::Path;

use convbn_train::data::ImageSet;
use convbn_train::data::fashion_mnist;
use convbn_zoo::image::resize_bilinear;
use image::{RgbImage, imageops};

use crate::DetectError;
use crate::Result;
use crate::boxes::Bbox;
use crate::builtin::deepforest;
use crate::coco::{Annotation, Category, CocoDataset, Image};
use crate::samples::{OnInvalid, Sample, Samples, from_coco, from_voc};
use crate::scenes::{SceneConfig, scene};
use crate::tiles::{TileConfig, tiles};
use crate::train::config::{DetectConfig, DetectData};
use crate::voc::load_voc;

/// Images with their objects.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionSet {
    /// Class names; labels index them.
    pub classes: Vec<String>,
    /// The pixels at the network size (`labels` of the set unused, zero).
    pub images: ImageSet,
    /// Each image's name (file, tile or scene).
    pub names: Vec<String>,
    /// Each source image's width and height in pixels.
    pub sizes: Vec<(u32, u32)>,
    /// Each image's boxes, in source pixels.
    pub boxes: Vec<Vec<Bbox>>,
    /// Each image's class indices.
    pub labels: Vec<Vec<usize>>,
    /// Annotations left out by `--skip-invalid`, one line each.
    pub skipped: Vec<String>,
}

/// Training and test images.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectSplit {
    /// Training images.
    pub train: DetectionSet,
    /// Test images.
    pub test: DetectionSet,
}

impl DetectionSet {
    fn empty(classes: Vec<String>, channels: usize, size: usize) -> Self {
        Self {
            images: ImageSet {
                channels,
                height: size,
                width: size,
                pixels: Vec::new(),
                labels: Vec::new(),
                classes: Vec::new(),
            },
            classes,
            names: Vec::new(),
            sizes: Vec::new(),
            boxes: Vec::new(),
            labels: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Number of objects.
    pub fn objects(&self) -> usize {
        self.boxes.iter().map(Vec::len).sum()
    }

    /// Add an image already at the network size (planar pixels).
    fn push(
        &mut self,
        name: String,
        size: (u32, u32),
        pixels: &[u8],
        boxes: Vec<Bbox>,
        labels: Vec<usize>,
    ) {
        debug_assert_eq!(pixels.len(), self.images.image_len());
        self.images.pixels.extend_from_slice(pixels);
        self.images.labels.push(0);
        self.names.push(name);
        self.sizes.push(size);
        self.boxes.push(boxes);
        self.labels.push(labels);
    }

    /// Add an RGB image of any size: resized to the network size by
    /// [`resize_bilinear`] (Pillow's bilinear, as torchvision's `Resize`).
    fn push_rgb(&mut self, name: String, image: &RgbImage, boxes: Vec<Bbox>, labels: Vec<usize>) {
        let s = self.images.width as u32;
        let resized = if image.dimensions() == (s, s) {
            image.clone()
        } else {
            resize_bilinear(image, s, s).expect("an image and the network size are not empty")
        };
        let plane = (s * s) as usize;
        let mut planar = vec![0u8; 3 * plane];
        for (k, p) in resized.pixels().enumerate() {
            for c in 0..3 {
                planar[c * plane + k] = p.0[c];
            }
        }
        self.push(name, image.dimensions(), &planar, boxes, labels);
    }

    /// Unannotated images (for prediction), resized to `size`.
    pub fn from_images(classes: Vec<String>, images: &[(String, RgbImage)], size: usize) -> Self {
        let mut set = Self::empty(classes, 3, size);
        for (name, image) in images {
            set.push_rgb(name.clone(), image, Vec::new(), Vec::new());
        }
        set
    }

    /// Image `i` at the network size as RGB (grey repeated).
    pub fn rgb(&self, i: usize) -> RgbImage {
        let s = self.images.width;
        let (c, plane) = (self.images.channels, s * s);
        let src = self.images.image(i);
        RgbImage::from_fn(s as u32, s as u32, |x, y| {
            let k = y as usize * s + x as usize;
            image::Rgb([0, 1, 2].map(|ch| src[(ch % c) * plane + k]))
        })
    }

    /// Every object relabelled as the one class `name`.
    pub fn single_class(mut self, name: &str) -> Self {
        self.classes = vec![name.to_string()];
        for labels in &mut self.labels {
            labels.iter_mut().for_each(|l| *l = 0);
        }
        self
    }

    /// The first `limit` images (all when `None`).
    pub fn truncated(mut self, limit: Option<usize>) -> Self {
        if let Some(limit) = limit.filter(|&l| l < self.len()) {
            self.images = self.images.truncated(Some(limit));
            self.names.truncate(limit);
            self.sizes.truncate(limit);
            self.boxes.truncate(limit);
            self.labels.truncate(limit);
        }
        self
    }

    /// Image `i`'s boxes at the network size (scaled by `size / width` and `size / height`).
    pub fn network_boxes(&self, i: usize) -> Vec<Bbox> {
        let s = self.images.width as f64;
        let (w, h) = self.sizes[i];
        self.boxes[i]
            .iter()
            .map(|b| b.resize(s / f64::from(w), s / f64::from(h)))
            .collect()
    }

    /// The set as COCO ground truth: image `i` has id `i + 1`, class `c` category id `c + 1`.
    pub fn to_coco(&self) -> CocoDataset {
        let images = self
            .sizes
            .iter()
            .enumerate()
            .map(|(i, &(width, height))| Image {
                id: i as u64 + 1,
                width,
                height,
                file_name: Some(self.names[i].clone()),
            })
            .collect();
        let mut annotations = Vec::new();
        for (i, (boxes, labels)) in self.boxes.iter().zip(&self.labels).enumerate() {
            for (b, &l) in boxes.iter().zip(labels) {
                annotations.push(Annotation {
                    id: annotations.len() as u64 + 1,
                    image_id: i as u64 + 1,
                    category_id: l as u64 + 1,
                    bbox: b.to_xywh(),
                    area: Some(b.area()),
                    iscrowd: 0,
                });
            }
        }
        let categories = self
            .classes
            .iter()
            .enumerate()
            .map(|(c, name)| Category {
                id: c as u64 + 1,
                name: name.clone(),
            })
            .collect();
        CocoDataset {
            images,
            annotations,
            categories,
        }
    }

    fn check(&self, what: &str) -> Result<()> {
        if self.is_empty() {
            return Err(DetectError::Invalid(format!(
                "the {what} set has no images (check the data options and --{what}-limit)"
            )));
        }
        Ok(())
    }
}

/// The data of `config`, truncated to its limits and checked.
pub fn load(config: &DetectConfig, fetch: bool) -> Result<DetectSplit> {
    let size = config.size;
    let policy = if config.skip_invalid {
        OnInvalid::Skip
    } else {
        OnInvalid::Error
    };
    let split = match &config.data {
        DetectData::Scenes { train, test } => scenes(*train, *test, size, fetch)?,
        DetectData::Trees => {
            // One class, tree crown: the training images know only Tree, so SOAP_061's Alive
            // and Dead crowns are scored as crowns (DeepForest's own evaluation does the same).
            let (train, test) = deepforest(fetch)?;
            let tiles = TileConfig::default();
            DetectSplit {
                train: from_samples(&train, size, Some(&tiles), OnInvalid::Error)?
                    .single_class("Tree"),
                test: from_samples(&test, size, Some(&tiles), OnInvalid::Error)?
                    .single_class("Tree"),
            }
        }
        DetectData::Coco {
            train,
            train_images,
            test,
            test_images,
        } => {
            let load = |json: &Path, dir: &Path| -> Result<Samples> {
                let dataset = match policy {
                    OnInvalid::Error => CocoDataset::load(json).map_err(|e| match e {
                        DetectError::Invalid(m) => DetectError::Invalid(format!(
                            "{}: {m} (fix the annotation, or leave invalid ones out with \
                             --skip-invalid)",
                            json.display()
                        )),
                        e => e,
                    })?,
                    OnInvalid::Skip => CocoDataset::parse(json)?,
                };
                from_coco(&dataset, dir, policy)
            };
            let (a, b) = (load(train, train_images)?, load(test, test_images)?);
            if a.classes != b.classes {
                return Err(DetectError::Invalid(format!(
                    "{} and {} have different categories ({:?} vs {:?}); both must list the same",
                    train.display(),
                    test.display(),
                    a.classes,
                    b.classes
                )));
            }
            DetectSplit {
                train: from_samples(&a, size, None, policy)?,
                test: from_samples(&b, size, None, policy)?,
            }
        }
        DetectData::Voc { train, test } => {
            let (a, b) = (read_voc_folder(train)?, read_voc_folder(test)?);
            let mut classes: Vec<String> = a
                .iter()
                .flat_map(|(_, v)| v.objects.iter().map(|o| o.name.clone()))
                .collect();
            classes.sort();
            classes.dedup();
            DetectSplit {
                train: from_samples(&from_voc(&a, train, &classes, policy)?, size, None, policy)?,
                test: from_samples(&from_voc(&b, test, &classes, policy)?, size, None, policy)?,
            }
        }
    };
    let split = DetectSplit {
        train: split.train.truncated(config.train_limit),
        test: split.test.truncated(config.test_limit),
    };
    split.train.check("train")?;
    split.test.check("test")?;
    if split.train.objects() == 0 {
        return Err(DetectError::Invalid(
            "the training set has no objects (every image is without boxes, or all were left \
             out as invalid): a detector cannot learn from it"
                .into(),
        ));
    }
    Ok(split)
}

/// Every `.xml` file of `dir`, parsed, in name order.
fn read_voc_folder(dir: &Path) -> Result<Vec<(std::path::PathBuf, crate::voc::VocAnnotation)>> {
    let io = |e| DetectError::Io {
        path: dir.display().to_string(),
        error: e,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DetectError::Invalid(format!(
            "{} holds no .xml annotations (a VOC folder holds one XML file per image)",
            dir.display()
        )));
    }
    files
        .into_iter()
        .map(|f| Ok((f.clone(), load_voc(&f)?)))
        .collect()
}

/// Images of `samples` read from disk, cut into tiles when `tile` is given. An unreadable
/// image (or one whose size is not its annotation's) is an error, or with
/// [`OnInvalid::Skip`] left out and reported in [`DetectionSet::skipped`].
pub fn from_samples(
    samples: &Samples,
    size: usize,
    tile: Option<&TileConfig>,
    policy: OnInvalid,
) -> Result<DetectionSet> {
    let mut set = DetectionSet::empty(samples.classes.clone(), 3, size);
    set.skipped = samples.skipped.clone();
    for sample in &samples.samples {
        let image = match (read_rgb(sample), policy) {
            (Ok(image), _) => image,
            (Err(e), OnInvalid::Skip) => {
                set.skipped.push(e.to_string());
                continue;
            }
            (Err(e), OnInvalid::Error) => return Err(e),
        };
        let name = sample
            .image
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        match tile {
            None => set.push_rgb(name, &image, sample.boxes.clone(), sample.labels.clone()),
            Some(config) => {
                for t in tiles(sample, config) {
                    let crop = imageops::crop_imm(&image, t.x, t.y, t.width, t.height).to_image();
                    let name = format!("{name}@{},{}", t.x, t.y);
                    set.push_rgb(name, &crop, t.boxes, t.labels);
                }
            }
        }
    }
    Ok(set)
}

/// A sample's image as RGB, checked against the annotated size.
fn read_rgb(sample: &Sample) -> Result<RgbImage> {
    let path = &sample.image;
    let image = image::open(path)
        .map_err(|e| {
            DetectError::Invalid(format!(
                "{} is not a readable image ({e}); replace the file or remove its annotation",
                path.display()
            ))
        })?
        .to_rgb8();
    if image.dimensions() != (sample.width, sample.height) {
        return Err(DetectError::Invalid(format!(
            "{} is {}x{} but its annotation says {}x{}; fix the annotation's size",
            path.display(),
            image.width(),
            image.height(),
            sample.width,
            sample.height
        )));
    }
    Ok(image)
}

/// Fashion-MNIST scenes: training scenes from the training items, test scenes from the test
/// items, drawn with [`SceneConfig::default`] (128 px canvases) and resized to `size`.
fn scenes(train: usize, test: usize, size: usize, fetch: bool) -> Result<DetectSplit> {
    let items = fashion_mnist::load(fetch)?;
    let config = SceneConfig::default();
    let make = |set: &ImageSet, n: usize, seed: u64, what: &str| -> DetectionSet {
        let mut out = DetectionSet::empty(set.classes.clone(), 1, size);
        for i in 0..n {
            let s = scene(set, seed, i as u64, &config);
            let side = s.size as u32;
            let grey = image::GrayImage::from_raw(side, side, s.pixels).expect("a square canvas");
            let pixels = if s.size == size {
                grey.into_raw()
            } else {
                resize_bilinear(&grey, size as u32, size as u32)
                    .expect("a scene and the network size are not empty")
                    .into_raw()
            };
            out.push(
                format!("{what}-{i}"),
                (side, side),
                &pixels,
                s.boxes,
                s.labels,
            );
        }
        out
    };
    // The scenes do not depend on the run's seed: every run trains and is scored on the same
    // sets (the seed drives initialisation, order and augmentation).
    Ok(DetectSplit {
        train: make(&items.train, train, SCENE_TRAIN_SEED, "train"),
        test: make(&items.test, test, SCENE_TEST_SEED, "test"),
    })
}

/// Seed of the fixed training scenes.
pub const SCENE_TRAIN_SEED: u64 = 0x7A1;
/// Seed of the fixed test scenes.
pub const SCENE_TEST_SEED: u64 = 0x7E57;
