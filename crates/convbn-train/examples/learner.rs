//! Fine-tune pretrained MobileNetV2 on Fashion-MNIST with burn's own `Learner` in Tune mode,
//! data-parallel on two workers (two handles of the CPU device here; `Device::cuda(0)` and
//! `Device::cuda(1)` on two GPUs), with burn's loss and accuracy metrics.
//!
//! `cargo run --release -p convbn-train --example learner`

use std::sync::Arc;

use burn::data::dataloader::DataLoaderBuilder;
use burn::optim::SgdConfig;
use burn::optim::momentum::MomentumConfig;
use burn::tensor::Device;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining};
use convbn::{Mode, set_mode};
use convbn_train::data::augment::Transform;
use convbn_train::learner::{ClassificationBatcher, RunOrder, StderrProgress, accuracy};
use convbn_train::lockstep::Task;
use convbn_train::trainer::{Classification, initial_model, load_data};
use convbn_train::{DataSource, FinetuneConfig, OptimizerConfig, OptimizerKind, Schedule, Start};
use convbn_zoo::Architecture;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex().autodiff();
    let workers = vec![device.clone(), device.clone()];
    let (batch, seed) = (32, 0);
    let config = FinetuneConfig {
        model: "mobilenet_v2".into(),
        start: Start::Imagenet,
        data: DataSource::FashionMnist,
        size: 32,
        batch_size: batch,
        epochs: 1,
        train_limit: Some(1280),
        test_limit: Some(1000),
        augment: true,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 5e-4,
            momentum: 0.9,
            weight_decay: 0.0,
        },
        schedule: Schedule::Constant,
        seed,
        eval_batch_size: 100,
    };
    let split = load_data(&config, true)?; // fetches the assets on first use
    let arch = Architecture::MobileNetV2;
    let mut model = initial_model(
        &arch.into(),
        &config,
        split.train.classes.len(),
        true,
        &device,
    )?;
    set_mode(&mut model, Mode::Tune)?; // Eval's gradients with Deploy's memory

    let (mean, std) = arch.normalization();
    let transform = Transform {
        size: 32,
        mean,
        std,
    };
    let (train, test) = (Arc::new(split.train), Arc::new(split.test));
    let k = workers.len();
    // Each worker takes 1/k of every global batch and weights its loss by 1/k: burn adds the
    // workers' gradients, so a step is that of the global batch's mean loss.
    let train_loader = DataLoaderBuilder::new(ClassificationBatcher::new(
        train.clone(),
        transform,
        Some(seed),
        1.0 / k as f64,
    ))
    .batch_size(batch / k)
    .build(RunOrder::new(
        seed,
        Classification::ORDER_SALT,
        1,
        train.len(),
        batch,
        k,
    ));
    let valid_loader = DataLoaderBuilder::new(ClassificationBatcher::new(
        test.clone(),
        transform,
        None,
        1.0,
    ))
    .batch_size(100)
    .build(RunOrder::plain(test.len()));

    let optimizer = SgdConfig::new()
        .with_momentum(Some(MomentumConfig {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
        }))
        .init();
    let result = SupervisedTraining::new("runs/learner_example", train_loader, valid_loader)
        .renderer(Box::new(StderrProgress::default()))
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .with_training_strategy(
            ExecutionStrategy::multi(workers, MultiDeviceOptim::OptimMainDevice).into(),
        )
        .launch(Learner::new(model, optimizer, 5e-4));
    if let Some(error) = result.error {
        return Err(format!("training stopped: {error}").into());
    }
    let test_accuracy = accuracy(&result.model, &test, transform, 100, &device);
    println!(
        "Tune mode, 2 workers, {} steps: test accuracy {:.1} % on {} images",
        train.len() / batch,
        100.0 * test_accuracy,
        test.len()
    );
    Ok(())
}
