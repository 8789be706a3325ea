//! COCO-format ground truth (`images`, `annotations`, `categories`) and results files (a list
//! of `{image_id, category_id, bbox, score}`), read and checked.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{DetectError, Result};

/// One image of a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Unique id.
    pub id: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Path relative to the dataset's image folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// One ground-truth object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Unique id (COCO ids start at 1).
    pub id: u64,
    /// The image it is in.
    pub image_id: u64,
    /// Its category.
    pub category_id: u64,
    /// `[x, y, width, height]` in pixels, `(x, y)` the top-left corner.
    pub bbox: [f64; 4],
    /// Object area in pixels (the segment's for COCO; decides small / medium / large).
    /// Defaults to the box area.
    #[serde(default)]
    pub area: Option<f64>,
    /// A crowd region: detections inside it are neither true nor false positives.
    #[serde(default)]
    pub iscrowd: u8,
}

impl Annotation {
    /// The area used for the size ranges: `area`, or the box's.
    pub fn area(&self) -> f64 {
        self.area.unwrap_or(self.bbox[2] * self.bbox[3])
    }
}

/// One category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Category {
    /// Unique id.
    pub id: u64,
    /// Name.
    pub name: String,
}

/// A COCO ground-truth file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CocoDataset {
    /// The images.
    pub images: Vec<Image>,
    /// The objects.
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    /// The categories.
    pub categories: Vec<Category>,
}

/// One detection, as in a COCO results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// The image.
    pub image_id: u64,
    /// The predicted category.
    pub category_id: u64,
    /// `[x, y, width, height]` in pixels.
    pub bbox: [f64; 4],
    /// Confidence.
    pub score: f64,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|error| DetectError::Io {
        path: path.display().to_string(),
        error,
    })
}

/// Check a box: finite, non-negative size.
fn check_box(bbox: &[f64; 4], what: impl Fn() -> String) -> Result<()> {
    if bbox.iter().any(|v| !v.is_finite()) || bbox[2] < 0.0 || bbox[3] < 0.0 {
        return Err(DetectError::Invalid(format!(
            "{}: bbox {bbox:?} must be finite [x, y, width, height] with width, height >= 0",
            what()
        )));
    }
    Ok(())
}

impl CocoDataset {
    /// Read and [`validate`](Self::validate) a COCO ground-truth JSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let dataset = Self::parse(path)?;
        dataset.validate()?;
        Ok(dataset)
    }

    /// Read a COCO ground-truth JSON file without checking its content (for
    /// [`from_coco`](crate::samples::from_coco) with [`OnInvalid::Skip`](crate::samples::OnInvalid),
    /// which reports and leaves out what is wrong).
    pub fn parse(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        serde_json::from_str(&read(path)?).map_err(|error| DetectError::Json {
            path: path.display().to_string(),
            what: "annotation",
            error,
        })
    }

    /// Unique ids, every annotation in a known image and category, finite boxes with
    /// non-negative sizes.
    pub fn validate(&self) -> Result<()> {
        let mut images = HashSet::new();
        for image in &self.images {
            if !images.insert(image.id) {
                return Err(DetectError::Invalid(format!(
                    "image id {} appears twice",
                    image.id
                )));
            }
        }
        let categories = self.categories.iter().map(|c| c.id).collect::<HashSet<_>>();
        if categories.len() != self.categories.len() {
            return Err(DetectError::Invalid("category ids must be unique".into()));
        }
        let mut ids = HashSet::new();
        for a in &self.annotations {
            let what = || format!("annotation {}", a.id);
            if !ids.insert(a.id) {
                return Err(DetectError::Invalid(format!("{} appears twice", what())));
            }
            if !images.contains(&a.image_id) {
                return Err(DetectError::Invalid(format!(
                    "{} is in image {}, which is not in `images`",
                    what(),
                    a.image_id
                )));
            }
            if !categories.contains(&a.category_id) {
                return Err(DetectError::Invalid(format!(
                    "{} has category {}, which is not in `categories` ({:?})",
                    what(),
                    a.category_id,
                    self.categories.iter().map(|c| c.id).collect::<Vec<_>>()
                )));
            }
            check_box(&a.bbox, what)?;
        }
        Ok(())
    }
}

/// Read a COCO results file (a JSON list of detections) and check it against `gt`: every
/// detection in a known image and category, with a finite box and score.
pub fn load_detections(path: impl AsRef<Path>, gt: &CocoDataset) -> Result<Vec<Detection>> {
    let path = path.as_ref();
    let detections: Vec<Detection> =
        serde_json::from_str(&read(path)?).map_err(|error| DetectError::Json {
            path: path.display().to_string(),
            what: "results",
            error,
        })?;
    let images = gt.images.iter().map(|i| i.id).collect::<HashSet<_>>();
    let categories = gt.categories.iter().map(|c| c.id).collect::<HashSet<_>>();
    for (i, d) in detections.iter().enumerate() {
        let what = || format!("detection {i} of {}", path.display());
        if !images.contains(&d.image_id) {
            return Err(DetectError::Invalid(format!(
                "{} is for image {}, which the ground truth does not have",
                what(),
                d.image_id
            )));
        }
        if !categories.contains(&d.category_id) {
            return Err(DetectError::Invalid(format!(
                "{} has category {}, which the ground truth does not have",
                what(),
                d.category_id
            )));
        }
        check_box(&d.bbox, what)?;
        if !d.score.is_finite() {
            return Err(DetectError::Invalid(format!(
                "{}: score {} is not finite",
                what(),
                d.score
            )));
        }
    }
    Ok(detections)
}
