//! Fine-tuning a zoo classifier: the [`Task`] that [`Lockstep`] runs for `finetune` and
//! `compare-modes` (mean cross-entropy, accuracy, test-set evaluation), and [`Finetune`], a
//! run of it.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use convbn::Mode;
use convbn_zoo::pretrained::build;
use convbn_zoo::{Model, ModelSpec};

use crate::TrainError;
use crate::checkpoint::Position;
use crate::config::{DataSource, FinetuneConfig};
use crate::data::augment::{Jitter, Transform};
use crate::data::{Split, fashion_mnist, folder};
use crate::lockstep::{Evaluation, Forward, Iteration, Lockstep, Plan, Record, Task};
pub use crate::lockstep::{RunOptions, checkpoint_file, log_file, materialize};
use crate::log::{EpochRecord, IterationRecord, RunLog};

/// Fine-tuning a classifier on a split: what [`Lockstep`] needs to know about it.
pub struct Classification {
    config: FinetuneConfig,
    spec: ModelSpec,
    data: Split,
    transform: Transform,
    loss: CrossEntropyLoss,
}

impl Classification {
    /// Training and test images.
    pub fn data(&self) -> &Split {
        &self.data
    }
}

/// Inputs, labels and dataset indices of one batch.
pub struct Batch {
    x: Tensor<4>,
    y: Tensor<1, Int>,
    images: usize,
}

impl Task for Classification {
    type Model = Model;
    type Log = RunLog;
    /// Fraction of the batch classified right (before the update).
    type Details = f64;
    type Batch = Batch;
    type Error = TrainError;
    const ORDER_SALT: u64 = 0x5417;

    fn new(config: FinetuneConfig, fetch: bool, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        let spec: ModelSpec = config.model.parse()?;
        let data = load_data(&config, fetch)?;
        let (mean, std) = spec.normalization();
        let transform = Transform {
            size: config.size,
            mean,
            std,
        };
        Ok(Self {
            config,
            spec,
            data,
            transform,
            loss: CrossEntropyLossConfig::new().init(device),
        })
    }

    fn plan(&self) -> Plan<'_> {
        let c = &self.config;
        Plan::new(c.seed, c.epochs, c.batch_size, &c.optimizer, &c.schedule)
    }

    fn train_len(&self) -> usize {
        self.data.train.len()
    }

    fn initial_model(&self, fetch: bool, device: &Device) -> Result<Model, TrainError> {
        let classes = self.data.train.classes.len();
        initial_model(&self.spec, &self.config, classes, fetch, device)
    }

    fn new_log(&self, mode: Mode) -> RunLog {
        RunLog {
            mode,
            config: self.config.clone(),
            iterations: Vec::new(),
            epochs: Vec::new(),
            summary: None,
        }
    }

    fn batch(&self, at: Position, order: &[usize], device: &Device) -> Batch {
        let (seed, epoch) = (self.config.seed, at.epoch);
        let positions = at.batch(self.config.batch_size, order.len());
        let indices: Vec<usize> = order[positions.clone()].to_vec();
        let jitter: Vec<Jitter> = if self.config.augment {
            positions
                .map(|p| {
                    Jitter::at(
                        seed,
                        epoch,
                        p,
                        self.data.train.height,
                        self.data.train.width,
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        Batch {
            x: self
                .transform
                .batch(&self.data.train, &indices, &jitter, device),
            y: labels(&self.data.train.labels, &indices, device),
            images: indices.len(),
        }
    }

    fn forward(&self, model: &Model, batch: &Batch) -> Result<Forward<f64>, TrainError> {
        let logits = model.forward(batch.x.clone())?;
        let loss = self.loss.forward(logits.clone(), batch.y.clone());
        let correct = correct(logits, batch.y.clone());
        Ok(Forward {
            loss,
            details: correct as f64 / batch.images as f64,
        })
    }

    fn record(&self, it: Iteration, accuracy: f64) -> Record<Self> {
        IterationRecord {
            step: it.step,
            epoch: it.epoch,
            loss: it.loss,
            accuracy,
            lr: it.lr,
            ms: it.ms,
            step_peak_bytes: it.step_peak_bytes,
            peak_bytes: it.peak_bytes,
        }
    }

    /// Test accuracy and mean loss (Train mode uses the running statistics).
    fn evaluate(
        &self,
        model: &Model,
        device: &Device,
        epoch: usize,
        log: &RunLog,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Evaluation<Self>, TrainError> {
        let loss_fn = CrossEntropyLossConfig::new().init(device);
        let test = &self.data.test;
        let (mut right, mut loss_sum) = (0i64, 0f64);
        let b = self.config.eval_batch_size;
        for start in (0..test.len()).step_by(b) {
            let idx: Vec<usize> = (start..(start + b).min(test.len())).collect();
            let x = self.transform.batch(test, &idx, &[], device);
            let y = labels(&test.labels, &idx, device);
            let logits = model.forward(x)?;
            loss_sum += loss_fn
                .forward(logits.clone(), y.clone())
                .into_scalar::<f64>()
                * idx.len() as f64;
            right += correct(logits, y);
            progress(idx.last().map_or(0, |l| l + 1), test.len());
        }
        let (train_loss, train_accuracy) = log.epoch_training(epoch);
        Ok(EpochRecord {
            epoch,
            train_loss,
            train_accuracy,
            test_accuracy: right as f64 / test.len() as f64,
            test_loss: loss_sum / test.len() as f64,
            test_images: test.len(),
        })
    }
}

/// How many rows of `logits` have their largest value at the label.
pub(crate) fn correct(logits: Tensor<2>, y: Tensor<1, Int>) -> i64 {
    let n = y.dims()[0];
    logits
        .argmax(1)
        .reshape([n])
        .equal(y)
        .int()
        .sum()
        .into_scalar::<i64>()
}

/// A fine-tuning run of one or more modes in lock-step: `Finetune::new(config, modes,
/// options, device)`, `Finetune::resume(...)`, then `run`.
pub type Finetune = Lockstep<Classification>;

/// Labels of `indices` as an int tensor.
fn labels(all: &[usize], indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let y: Vec<i64> = indices.iter().map(|&i| all[i] as i64).collect();
    Tensor::from_data(TensorData::new(y, [indices.len()]), device)
}

/// The dataset of `config`, truncated to its limits and checked.
pub fn load_data(config: &FinetuneConfig, fetch: bool) -> Result<Split, TrainError> {
    let split = match &config.data {
        DataSource::FashionMnist => fashion_mnist::load(fetch)?,
        DataSource::Folder {
            train,
            test,
            test_fraction,
        } => folder::load_split(
            train,
            test.as_deref(),
            *test_fraction,
            config.size as u32,
            config.seed,
        )?,
    };
    let split = Split {
        train: split.train.truncated(config.train_limit),
        test: split.test.truncated(config.test_limit),
    };
    split.check()?;
    Ok(split)
}

/// The starting model: pretrained trunk, a fresh seeded classifier for `classes` classes, all
/// blocks in Eval mode.
pub fn initial_model(
    spec: &ModelSpec,
    config: &FinetuneConfig,
    classes: usize,
    fetch: bool,
    device: &Device,
) -> Result<Model, TrainError> {
    device.seed(config.seed);
    let model = build(spec, &config.start.weights(), fetch, device)?;
    device.seed(config.seed ^ 0x0C1A_55E5);
    let model = model.with_num_classes(classes, device)?;
    materialize(&model);
    Ok(model)
}
