//! Options shared by `finetune` and `compare-modes`: what defines the run, and how to carry
//! it out.

use std::path::PathBuf;

use anyhow::{Result, bail};
use convbn_train::{
    DataSource, FinetuneConfig, OptimizerConfig, OptimizerKind, RunOptions, Schedule, Start,
};

/// Learning-rate schedule names.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleName {
    /// Linear warm-up, then cosine decay to zero.
    Cosine,
    /// Multiply by --step-gamma every --step-every epochs.
    Step,
    /// Keep --lr.
    Constant,
}

/// Optimizer names.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerName {
    /// SGD with momentum and L2 weight decay (PyTorch semantics).
    Sgd,
    /// AdamW (decoupled weight decay).
    Adamw,
}

/// Everything that defines a fine-tuning run.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// Zoo architecture, or onnx:FILE for an ONNX CNN (its Conv->BN pairs become blocks).
    #[arg(long, default_value = "mobilenet_v2")]
    pub model: String,
    /// Starting weights: `imagenet` (the project's asset; an ONNX model's own weights),
    /// `random` (zoo models), or a checkpoint file in the reference PyTorch layout (burn paths
    /// for ONNX models). The classifier is always replaced.
    #[arg(long, default_value = "imagenet")]
    pub weights: String,
    /// `fashion-mnist` or an image folder (one sub-folder of images per class).
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Test image folder for a folder dataset (default: hold out --test-fraction).
    #[arg(long)]
    pub test_data: Option<PathBuf>,
    /// Fraction of a folder dataset held out for testing when --test-data is absent.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Input side in pixels (on 2 CPU cores, 64 trains MobileNetV2 at ~65 images/s in Tune mode).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Images per iteration.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Passes over the training set.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Use only the first N training images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Turn off the random translation and flip of training images.
    #[arg(long)]
    pub no_augment: bool,
    #[command(flatten)]
    pub optim: OptimArgs,
    /// Seed of the classifier initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images per step when measuring test accuracy.
    #[arg(long, default_value_t = 100)]
    pub eval_batch_size: usize,
    /// Run directory: `<out>/<mode>/{checkpoint.safetensors,log.json}`, charts, summary.
    #[arg(long, default_value = "runs/finetune")]
    pub out: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub device: crate::device::DeviceArgs,
}

impl TrainArgs {
    /// The run's configuration.
    pub fn config(&self) -> Result<FinetuneConfig> {
        let start = parse_start(&self.weights)?;
        let data = match self.data.as_str() {
            "fashion-mnist" | "fashion_mnist" => DataSource::FashionMnist,
            path => {
                let p = PathBuf::from(path);
                if !p.is_dir() {
                    bail!(
                        "--data {path}: not `fashion-mnist` and not a folder (an image folder \
                         holds one sub-folder of PNG/JPEG images per class)"
                    );
                }
                DataSource::Folder {
                    train: p,
                    test: self.test_data.clone(),
                    test_fraction: self.test_fraction,
                }
            }
        };
        let config = FinetuneConfig {
            model: self.model.clone(),
            start,
            data,
            size: self.size,
            batch_size: self.batch_size,
            epochs: self.epochs,
            train_limit: self.train_limit,
            test_limit: self.test_limit,
            augment: !self.no_augment,
            optimizer: self.optim.optimizer(FINETUNE_LR),
            schedule: self.optim.schedule(0),
            seed: self.seed,
            eval_batch_size: self.eval_batch_size,
        };
        config.validate()?;
        Ok(config)
    }

    /// How to carry the run out.
    pub fn options(&self) -> RunOptions {
        self.run.options(&self.out)
    }
}

/// Default learning rate of fine-tuning.
pub const FINETUNE_LR: f64 = 0.002;

/// Optimizer and learning-rate schedule options (shared by `finetune`, `compare-modes` and
/// `detect train`).
#[derive(clap::Args, Debug, Clone)]
pub struct OptimArgs {
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerName::Sgd)]
    pub optimizer: OptimizerName,
    /// Base learning rate (default: 0.002 for `finetune`, 0.01 for `detect train`). 0.002 suits SGD with momentum 0.9 and batch 32 on pretrained
    /// MobileNetV2 with frozen BN statistics; in Eval and Tune modes 0.005 trained poorly and
    /// 0.01 fell to chance within 50 iterations.
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Weight decay (L2 for SGD, decoupled for AdamW).
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = ScheduleName::Cosine)]
    pub schedule: ScheduleName,
    /// Warm-up iterations of the cosine schedule (default: 0 for `finetune`, 100 for
    /// `detect train`).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Epochs between decays of the step schedule.
    #[arg(long, default_value_t = 1)]
    pub step_every: usize,
    /// Decay factor of the step schedule.
    #[arg(long, default_value_t = 0.1)]
    pub step_gamma: f64,
}

impl OptimArgs {
    /// The optimizer, with `default_lr` when --lr is not given.
    pub fn optimizer(&self, default_lr: f64) -> OptimizerConfig {
        OptimizerConfig {
            kind: match self.optimizer {
                OptimizerName::Sgd => OptimizerKind::Sgd,
                OptimizerName::Adamw => OptimizerKind::AdamW,
            },
            lr: self.lr.unwrap_or(default_lr),
            momentum: self.momentum,
            weight_decay: self.weight_decay,
        }
    }

    /// The learning-rate schedule, with `default_warmup` when --warmup is not given.
    pub fn schedule(&self, default_warmup: usize) -> Schedule {
        match self.schedule {
            ScheduleName::Cosine => Schedule::Cosine {
                warmup: self.warmup.unwrap_or(default_warmup),
            },
            ScheduleName::Step => Schedule::Step {
                every: self.step_every,
                gamma: self.step_gamma,
            },
            ScheduleName::Constant => Schedule::Constant,
        }
    }
}

/// Checkpointing and resuming options (shared by the training commands).
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Write checkpoints every N iterations (and after every epoch); 0 for epochs only.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// Continue the run in --out from its checkpoints (same options required).
    #[arg(long)]
    pub resume: bool,
    /// Replace an earlier run's checkpoints in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Stop after N iterations in total, with a checkpoint (continue later with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
}

impl RunArgs {
    /// How to carry out a run writing into `out`.
    pub fn options(&self, out: &std::path::Path) -> RunOptions {
        RunOptions {
            out_dir: out.to_path_buf(),
            checkpoint_every: self.checkpoint_every,
            stop_after: self.stop_after,
            fetch: true,
            overwrite: self.overwrite,
        }
    }
}

/// `--weights`: `imagenet`, `random`, or a checkpoint file that must exist.
pub fn parse_start(weights: &str) -> Result<Start> {
    Ok(match weights {
        "imagenet" => Start::Imagenet,
        "random" => Start::Random,
        path => {
            let p = PathBuf::from(path);
            if !p.is_file() {
                bail!("--weights {path}: no such file (or use `imagenet` / `random`)");
            }
            Start::File(p)
        }
    })
}
