//! Training and evaluating detectors: the run's configuration, data held at the network size,
//! batches with FCOS targets, the lock-step training loop with checkpoints and resume, the
//! JSON log, and scoring on a test set.

pub mod augment;
pub mod baseline;
pub mod batch;
pub mod config;
pub mod data;
pub mod evaluate;
pub mod log;
pub mod observer;
pub mod trainer;

pub use config::{DetectConfig, DetectData};
pub use data::{DetectSplit, DetectionSet};
pub use trainer::DetectTrain;
