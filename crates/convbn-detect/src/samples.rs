//! Detection samples (an image file, its size, boxes and class indices) from COCO or Pascal
//! VOC annotations, checked: boxes outside the image, boxes of negative size, unknown
//! categories and missing image files are errors, or, with [`OnInvalid::Skip`], reported and
//! left out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::boxes::Bbox;
use crate::coco::CocoDataset;
use crate::voc::VocAnnotation;
use crate::{DetectError, Result};

/// What to do with an invalid annotation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnInvalid {
    /// Stop with an error naming it.
    #[default]
    Error,
    /// Leave the box (or the image, when its file is missing) out and report it.
    Skip,
}

/// One image with its objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The image file.
    pub image: PathBuf,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The objects' boxes.
    pub boxes: Vec<Bbox>,
    /// The objects' class indices (into [`Samples::classes`]).
    pub labels: Vec<usize>,
}

/// Samples, their class names, and what was left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    /// Class names; labels index them.
    pub classes: Vec<String>,
    /// The images.
    pub samples: Vec<Sample>,
    /// What [`OnInvalid::Skip`] left out, one line each.
    pub skipped: Vec<String>,
}

/// Slack for boxes on the image border (annotation tools round).
const BORDER: f64 = 0.5;

/// Check one box of an image `w` x `h`; the problem, if any.
fn box_problem(b: Bbox, w: u32, h: u32) -> Option<String> {
    if !b.is_valid() {
        return Some(format!(
            "box {b:?} has a negative size or a non-finite corner"
        ));
    }
    let (w, h) = (f64::from(w), f64::from(h));
    if b.x1 < -BORDER || b.y1 < -BORDER || b.x2 > w + BORDER || b.y2 > h + BORDER {
        return Some(format!("box {b:?} lies outside the {w}x{h} image"));
    }
    None
}

/// The file `name` of an annotation inside the folder `dir`: refused when it is absolute or
/// climbs out of the folder (`..`), so an annotation file cannot make us open `/etc/passwd`.
pub fn inside(dir: &Path, name: &str) -> std::result::Result<PathBuf, String> {
    use std::path::Component;
    let relative = Path::new(name);
    let contained = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if name.is_empty() || !contained {
        return Err(format!(
            "file name '{name}' is not a path inside the images folder {} (absolute paths and \
             '..' are refused)",
            dir.display()
        ));
    }
    Ok(dir.join(relative))
}

struct Builder {
    policy: OnInvalid,
    out: Samples,
}

impl Builder {
    /// Record `problem` at `place`: an error, or a skipped line.
    fn problem(&mut self, place: &str, problem: String) -> Result<()> {
        let line = format!("{place}: {problem}");
        match self.policy {
            OnInvalid::Error => Err(DetectError::Invalid(format!(
                "{line} (fix the annotation, or leave invalid ones out explicitly: --skip-invalid)"
            ))),
            OnInvalid::Skip => {
                self.out.skipped.push(line);
                Ok(())
            }
        }
    }
}

/// Samples from a COCO dataset whose `file_name`s are relative to `image_dir`; crowd boxes
/// are left out (they are regions, not objects to detect). Classes are the categories in id
/// order.
pub fn from_coco(dataset: &CocoDataset, image_dir: &Path, policy: OnInvalid) -> Result<Samples> {
    let mut categories: Vec<_> = dataset.categories.iter().collect();
    categories.sort_by_key(|c| c.id);
    let index: HashMap<u64, usize> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id, i))
        .collect();
    let mut b = Builder {
        policy,
        out: Samples {
            classes: categories.iter().map(|c| c.name.clone()).collect(),
            ..Default::default()
        },
    };
    let mut by_image: HashMap<u64, Vec<&crate::coco::Annotation>> = HashMap::new();
    for a in &dataset.annotations {
        by_image.entry(a.image_id).or_default().push(a);
    }
    let image_ids: std::collections::HashSet<u64> = dataset.images.iter().map(|i| i.id).collect();
    for a in &dataset.annotations {
        if !image_ids.contains(&a.image_id) {
            b.problem(
                &format!("annotation {}", a.id),
                format!("its image {} is not in `images`", a.image_id),
            )?;
        }
    }
    for image in &dataset.images {
        let place = format!("image {}", image.id);
        let Some(name) = &image.file_name else {
            b.problem(&place, "has no file_name".into())?;
            continue;
        };
        let path = match inside(image_dir, name) {
            Ok(path) => path,
            Err(why) => {
                b.problem(&place, why)?;
                continue;
            }
        };
        if !path.is_file() {
            b.problem(&place, format!("file {} does not exist", path.display()))?;
            continue;
        }
        let mut sample = Sample {
            image: path,
            width: image.width,
            height: image.height,
            boxes: Vec::new(),
            labels: Vec::new(),
        };
        for a in by_image.get(&image.id).into_iter().flatten() {
            let place = format!("annotation {} (image {})", a.id, image.id);
            if a.iscrowd != 0 {
                continue;
            }
            let Some(&label) = index.get(&a.category_id) else {
                b.problem(&place, format!("unknown category id {}", a.category_id))?;
                continue;
            };
            let bbox = Bbox::from_xywh(a.bbox);
            if let Some(p) = box_problem(bbox, image.width, image.height) {
                b.problem(&place, p)?;
                continue;
            }
            sample
                .boxes
                .push(bbox.clip(image.width.into(), image.height.into()));
            sample.labels.push(label);
        }
        b.out.samples.push(sample);
    }
    Ok(b.out)
}

/// Samples from VOC annotations (with the file each came from, for messages) whose
/// `filename`s are relative to `image_dir`. Object names must be among `classes`.
pub fn from_voc(
    annotations: &[(PathBuf, VocAnnotation)],
    image_dir: &Path,
    classes: &[String],
    policy: OnInvalid,
) -> Result<Samples> {
    let mut b = Builder {
        policy,
        out: Samples {
            classes: classes.to_vec(),
            ..Default::default()
        },
    };
    for (file, a) in annotations {
        let place = file.display().to_string();
        let path = match inside(image_dir, &a.filename) {
            Ok(path) => path,
            Err(why) => {
                b.problem(&place, why)?;
                continue;
            }
        };
        if !path.is_file() {
            b.problem(&place, format!("image {} does not exist", path.display()))?;
            continue;
        }
        let mut sample = Sample {
            image: path,
            width: a.width,
            height: a.height,
            boxes: Vec::new(),
            labels: Vec::new(),
        };
        for (i, o) in a.objects.iter().enumerate() {
            let place = format!("{place}, object {i}");
            let Some(label) = classes.iter().position(|c| *c == o.name) else {
                b.problem(
                    &place,
                    format!("unknown class '{}' (classes: {classes:?})", o.name),
                )?;
                continue;
            };
            if let Some(p) = box_problem(o.bbox, a.width, a.height) {
                b.problem(&place, p)?;
                continue;
            }
            sample
                .boxes
                .push(o.bbox.clip(a.width.into(), a.height.into()));
            sample.labels.push(label);
        }
        b.out.samples.push(sample);
    }
    Ok(b.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coco::{Annotation, Category, Image};

    #[test]
    fn file_names_must_stay_inside_the_images_folder() {
        let dir = Path::new("/data/images");
        assert_eq!(inside(dir, "a/b.png").unwrap(), dir.join("a/b.png"));
        assert_eq!(inside(dir, "./b.png").unwrap(), dir.join("./b.png"));
        for bad in ["../../etc/passwd", "/etc/passwd", "a/../../b.png", ""] {
            let err = inside(dir, bad).unwrap_err();
            assert!(err.contains("not a path inside"), "{bad}: {err}");
        }
    }

    fn dataset(dir: &Path) -> CocoDataset {
        std::fs::write(dir.join("a.png"), b"png").unwrap();
        let ann = |id, cat, bbox| Annotation {
            id,
            image_id: 1,
            category_id: cat,
            bbox,
            area: None,
            iscrowd: 0,
        };
        CocoDataset {
            images: vec![
                Image {
                    id: 1,
                    width: 100,
                    height: 50,
                    file_name: Some("a.png".into()),
                },
                Image {
                    id: 2,
                    width: 100,
                    height: 50,
                    file_name: Some("missing.png".into()),
                },
            ],
            annotations: vec![
                ann(1, 7, [10.0, 10.0, 20.0, 20.0]),
                ann(2, 7, [90.0, 10.0, 20.0, 20.0]),
                ann(3, 7, [10.0, 10.0, -5.0, 20.0]),
            ],
            categories: vec![Category {
                id: 7,
                name: "tree".into(),
            }],
        }
    }

    #[test]
    fn invalid_annotations_are_errors_or_skipped_and_reported() {
        let dir = std::env::temp_dir().join(format!("convbn-samples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ds = dataset(&dir);
        let err = from_coco(&ds, &dir, OnInvalid::Error)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("annotation 2") && err.contains("outside"),
            "{err}"
        );
        let s = from_coco(&ds, &dir, OnInvalid::Skip).unwrap();
        assert_eq!(s.samples.len(), 1);
        assert_eq!(s.samples[0].boxes, vec![Bbox::new(10.0, 10.0, 30.0, 30.0)]);
        assert_eq!(s.skipped.len(), 3, "{:?}", s.skipped);
        assert!(s.skipped[1].contains("negative size"));
        assert!(s.skipped[2].contains("missing.png"));
    }

    #[test]
    fn voc_objects_of_unknown_classes_are_reported() {
        let dir = std::env::temp_dir().join(format!("convbn-voc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.tif"), b"tif").unwrap();
        let xml = r#"<annotation><filename>x.tif</filename><size><width>40</width><height>40</height></size>
            <object><name>Tree</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>
            <object><name>Bush</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>
            </annotation>"#;
        let a = crate::voc::parse_voc(xml, "x.xml").unwrap();
        let files = [(PathBuf::from("x.xml"), a)];
        let classes = ["Tree".to_string()];
        let err = from_voc(&files, &dir, &classes, OnInvalid::Error).unwrap_err();
        assert!(err.to_string().contains("unknown class 'Bush'"), "{err}");
        let s = from_voc(&files, &dir, &classes, OnInvalid::Skip).unwrap();
        assert_eq!(s.samples[0].labels, vec![0]);
        assert_eq!(s.skipped.len(), 1);
    }
}
