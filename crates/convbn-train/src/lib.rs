//! Fine-tuning pretrained ConvBN models in any mode: datasets (Fashion-MNIST, image folders),
//! augmentation, SGD/AdamW, learning-rate schedules, checkpoints with exact resume, JSON logs,
//! and several modes run in lock-step for like-for-like comparisons.
//!
//! ```no_run
//! use convbn::Mode;
//! use convbn_train::{FinetuneConfig, Finetune, RunOptions, observer::Silent};
//! # fn main() -> Result<(), convbn_train::TrainError> {
//! # let config: FinetuneConfig = todo!();
//! let device = burn::tensor::Device::flex().autodiff();
//! let options = RunOptions {
//!     out_dir: "runs/demo".into(),
//!     checkpoint_every: 100,
//!     stop_after: None,
//!     fetch: true,
//!     overwrite: false,
//! };
//! let logs = Finetune::new(config, &[Mode::Eval, Mode::Tune], options, &device)?
//!     .run(&mut Silent)?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod data;
mod error;
pub mod learner;
pub mod lockstep;
pub mod log;
pub mod observer;
pub mod optimizer;
pub mod param_ids;
pub mod rng;
pub mod schedule;
pub mod trainer;

pub use config::{DataSource, FinetuneConfig, Start};
pub use error::TrainError;
pub use lockstep::{Lockstep, RunOptions, Task};
pub use optimizer::{OptimizerConfig, OptimizerKind};
pub use schedule::Schedule;
pub use trainer::Finetune;
