//! Datasets for fine-tuning.

pub mod idx;
