//! Shared helpers: synthetic image folders and small run configurations.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use convbn_train::{
    DataSource, FinetuneConfig, OptimizerConfig, OptimizerKind, RunOptions, Schedule, Start,
};

/// Write `per_class` PNGs of `size` x `size` for each of `classes` classes under `root`:
/// class `c` draws a bright bar at a class-specific position on a noisy background.
pub fn synthetic_folder(root: &Path, classes: usize, per_class: usize, size: u32) {
    let mut state = 12345u64;
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 58) as u8
    };
    for c in 0..classes {
        let dir = root.join(format!("class_{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let img = image::RgbImage::from_fn(size, size, |x, y| {
                let on = (x as usize * classes / size as usize) == c;
                let v = if on { 190u8 } else { 30 } + noise();
                image::Rgb([v, v.saturating_sub((y % 7) as u8), v / 2])
            });
            img.save(dir.join(format!("{i:03}.png"))).unwrap();
        }
    }
}

/// A small, fast run on an image folder with random weights.
pub fn folder_config(train: &Path) -> FinetuneConfig {
    FinetuneConfig {
        model: "mobilenet_v2".into(),
        start: Start::Random,
        data: DataSource::Folder {
            train: train.to_path_buf(),
            test: None,
            test_fraction: 0.25,
        },
        size: 32,
        batch_size: 4,
        epochs: 2,
        train_limit: None,
        test_limit: None,
        augment: true,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
        },
        schedule: Schedule::Cosine { warmup: 2 },
        seed: 7,
        eval_batch_size: 8,
    }
}

/// Options writing into `out`, checkpointing every iteration.
pub fn options(out: &Path) -> RunOptions {
    RunOptions {
        out_dir: out.to_path_buf(),
        checkpoint_every: 1,
        stop_after: None,
        fetch: false,
        overwrite: false,
    }
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convbn-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether the Fashion-MNIST and MobileNetV2 assets are there (fetched first when missing;
/// false only when skipped under `CONVBN_SKIP_ASSETS=1`).
pub fn have_assets() -> bool {
    [
        "mobilenet_v2",
        "fashion-mnist-train-images",
        "fashion-mnist-train-labels",
        "fashion-mnist-test-images",
        "fashion-mnist-test-labels",
    ]
    .iter()
    .all(|n| convbn_zoo::assets::for_test(n).is_some())
}

/// Every float parameter of a module, flattened in visiting order.
pub fn parameters<M: burn::module::Module>(model: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend(data.try_to_vec::<f32>().expect("f32 values"));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// `|a - b| / |b|` over whole vectors.
pub fn relative_distance(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (d / n.max(1e-30)).sqrt()
}

/// The GPU tests' device: burn's wgpu backend with autodiff on `CONVBN_TEST_GPU`'s adapter
/// (default `wgpu:cpu`, a software adapter).
#[cfg(feature = "wgpu")]
pub fn wgpu_device() -> burn::tensor::Device {
    convbn::DeviceSpec::from_env("CONVBN_TEST_GPU", "wgpu:cpu")
        .unwrap_or_else(|e| panic!("CONVBN_TEST_GPU: {e}"))
        .training_device(burn::tensor::FloatDType::F32)
        .unwrap_or_else(|e| panic!("{e} (install Mesa's Vulkan or OpenGL driver)"))
}

/// One step of a global batch of 16 (all the training images of a two-class synthetic folder
/// under `root`) in `mode`, on the devices `one` and again on the devices `two` (burn's Learner,
/// SGD without momentum, lr 0.05). Returns how far the step moved the parameters,
/// `|one's - start| / |start|`, and how far the two updates are apart, `|two's update -
/// one's| / |one's update|`.
pub fn update_gap(
    root: &Path,
    mode: convbn::Mode,
    one: &[burn::tensor::Device],
    two: &[burn::tensor::Device],
) -> (f64, f64) {
    use convbn_train::learner::{Parallelism, finetune_with_learner};
    let data = root.join("data");
    if !data.exists() {
        synthetic_folder(&data, 2, 12, 24);
    }
    let config = FinetuneConfig {
        batch_size: 16,
        epochs: 1,
        train_limit: Some(16),
        augment: false,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 0.05,
            momentum: 0.0,
            weight_decay: 0.0,
        },
        schedule: Schedule::Constant,
        ..folder_config(&data)
    };
    let spec: convbn_zoo::ModelSpec = config.model.parse().unwrap();
    let mut start =
        convbn_train::trainer::initial_model(&spec, &config, 2, false, &one[0]).unwrap();
    convbn::set_mode(&mut start, mode).unwrap();
    let before = parameters(&start);
    let run = |devices: &[burn::tensor::Device], dir: &str| {
        let out = finetune_with_learner(
            &config,
            mode,
            devices,
            Parallelism::Multi,
            &root.join(dir),
            false,
        )
        .unwrap_or_else(|e| panic!("{mode} on {} device(s): {e}", devices.len()));
        assert_eq!(out.steps, 1, "{mode}: one optimizer step");
        parameters(&out.model)
    };
    let (p1, p2) = (run(one, "one"), run(two, "two"));
    let update1: Vec<f32> = p1.iter().zip(&before).map(|(a, b)| a - b).collect();
    let update2: Vec<f32> = p2.iter().zip(&before).map(|(a, b)| a - b).collect();
    (
        relative_distance(&p1, &before),
        relative_distance(&update2, &update1),
    )
}

/// The short fine-tuning run of the Learner accuracy tests: pretrained MobileNetV2 on
/// Fashion-MNIST at 32x32, global batches of 32 (40 steps over 1280 images), SGD with
/// momentum at lr 5e-4, 500 test images.
pub fn learner_accuracy_config() -> FinetuneConfig {
    FinetuneConfig {
        model: "mobilenet_v2".into(),
        start: convbn_train::Start::Imagenet,
        data: convbn_train::DataSource::FashionMnist,
        size: 32,
        batch_size: 32,
        epochs: 1,
        train_limit: Some(1280),
        test_limit: Some(500),
        augment: true,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 5e-4,
            momentum: 0.9,
            weight_decay: 0.0,
        },
        schedule: Schedule::Constant,
        seed: 3,
        eval_batch_size: 100,
    }
}

/// `config` fine-tuned in Tune with burn's Learner on one worker and on two (its
/// multi-device strategy, `device()` called once per worker), under `root`.
pub fn one_and_two_workers(
    config: &FinetuneConfig,
    root: &Path,
    device: impl Fn() -> burn::tensor::Device,
) -> [convbn_train::learner::LearnerOutcome; 2] {
    use convbn_train::learner::{Parallelism, finetune_with_learner};
    [1, 2].map(|k| {
        let devices: Vec<_> = (0..k).map(|_| device()).collect();
        let out = finetune_with_learner(
            config,
            convbn::Mode::Tune,
            &devices,
            Parallelism::Multi,
            &root.join(format!("workers-{k}")),
            true,
        )
        .unwrap_or_else(|e| panic!("{k} worker(s): {e}"));
        println!(
            "test accuracy after {} steps on {k} worker(s): {:.3} ({:.1} s)",
            out.steps, out.test_accuracy, out.train_seconds
        );
        out
    })
}
