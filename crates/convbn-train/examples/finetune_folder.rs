//! Fine-tune pretrained MobileNetV2 on your own image folder in Tune mode, from the library.
//!
//! `cargo run --release -p convbn-train --example finetune_folder -- path/to/folder`
//! (one sub-folder of PNG/JPEG images per class; needs `convbn fetch mobilenet_v2`).

use convbn::Mode;
use convbn_train::observer::Silent;
use convbn_train::{
    DataSource, Finetune, FinetuneConfig, OptimizerConfig, OptimizerKind, RunOptions, Schedule,
    Start,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = std::env::args()
        .nth(1)
        .ok_or("usage: finetune_folder FOLDER (one sub-folder of images per class)")?;
    let config = FinetuneConfig {
        model: "mobilenet_v2".into(),
        start: Start::Imagenet,
        data: DataSource::Folder {
            train: folder.into(),
            test: None,
            test_fraction: 0.2,
        },
        size: 96,
        batch_size: 16,
        epochs: 3,
        train_limit: None,
        test_limit: None,
        augment: true,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 0.002,
            momentum: 0.9,
            weight_decay: 1e-4,
        },
        schedule: Schedule::Cosine { warmup: 10 },
        seed: 0,
        eval_batch_size: 64,
    };
    let options = RunOptions {
        out_dir: "runs/folder".into(),
        checkpoint_every: 100,
        stop_after: None,
        fetch: true,
        overwrite: true,
    };
    let device = burn::tensor::Device::flex().autodiff();
    let logs = Finetune::new(config, &[Mode::Tune], options, &device)?.run(&mut Silent)?;
    for epoch in &logs[0].epochs {
        println!(
            "epoch {}: test accuracy {:.2}%",
            epoch.epoch + 1,
            100.0 * epoch.test_accuracy
        );
    }
    Ok(())
}
