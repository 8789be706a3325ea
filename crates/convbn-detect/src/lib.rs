//! Object detection on pretrained ConvBN backbones: an FCOS detector on MobileNetV2 whose
//! backbone blocks train in Eval, Tune or Deploy mode ([`detector`], [`criterion`],
//! [`assign`], [`decode`]); training with lock-step modes, checkpoints and resume
//! ([`train`]); boxes and their transforms; COCO and Pascal VOC annotations checked into
//! training samples; the built-in Fashion-MNIST scenes and DeepForest tree crowns; and the
//! COCO evaluation exactly as pycocotools computes it.

#![warn(missing_docs)]

pub mod assign;
pub mod boxes;
pub mod builtin;
pub mod coco;
pub mod criterion;
pub mod decode;
pub mod detector;
pub mod learner;
pub mod losses;
pub mod samples;
pub mod scenes;
pub mod tiles;
pub mod train;
pub mod voc;

/// Errors of detection data and evaluation.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A file could not be read.
    #[error("reading {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// A file is not the JSON it should be.
    #[error("{path} is not a valid COCO {what} file: {error}")]
    Json {
        /// The file.
        path: String,
        /// Annotations or detections.
        what: &'static str,
        /// Where and why parsing failed.
        error: serde_json::Error,
    },
    /// The content is inconsistent (what, where, and what to do).
    #[error("{0}")]
    Invalid(String),
    /// A ConvBN block refused its input.
    #[error(transparent)]
    ConvBn(#[from] convbn::ConvBnError),
    /// Training options, checkpoints or the classification data the scenes are made of.
    #[error(transparent)]
    Train(#[from] convbn_train::TrainError),
    /// A built-in dataset's assets (missing: `convbn fetch ...` says how).
    #[error(transparent)]
    Asset(#[from] convbn_zoo::ZooError),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, DetectError>;
