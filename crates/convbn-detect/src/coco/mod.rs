//! COCO: the annotation and results formats, and the evaluation.

mod dataset;
mod eval;

pub use dataset::{Annotation, Category, CocoDataset, Detection, Image, load_detections};
pub use eval::{CocoStats, STAT_NAMES, evaluate};
