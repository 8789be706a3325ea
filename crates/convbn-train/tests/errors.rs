//! Bad input gives clear errors and never replaces a good checkpoint.

mod common;

use convbn::Mode;
use convbn_train::data::fashion_mnist::read_pair;
use convbn_train::data::folder;
use convbn_train::observer::Silent;
use convbn_train::trainer::checkpoint_file;
use convbn_train::{Finetune, RunOptions, TrainError};

fn device() -> burn::tensor::Device {
    burn::tensor::Device::flex().autodiff()
}

fn message(e: TrainError) -> String {
    e.to_string()
}

#[test]
fn an_empty_image_folder_is_refused() {
    let root = common::temp_dir("empty");
    std::fs::create_dir_all(root.join("cats")).unwrap();
    std::fs::create_dir_all(root.join("dogs")).unwrap();
    let err = message(folder::scan(&root).unwrap_err());
    assert!(err.contains("holds no PNG or JPEG image"), "{err}");
    let lonely = common::temp_dir("noclasses");
    let err = message(folder::scan(&lonely).unwrap_err());
    assert!(err.contains("one sub-folder of images per class"), "{err}");
}

#[test]
fn an_unreadable_image_names_the_file() {
    let root = common::temp_dir("unreadable");
    common::synthetic_folder(&root, 2, 2, 8);
    let bad = root.join("class_1").join("zz_broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
    let err = message(folder::load(&root, 16).unwrap_err());
    assert!(err.contains("zz_broken.png"), "{err}");
}

#[test]
fn a_corrupted_idx_header_is_reported() {
    let root = common::temp_dir("idx");
    let images = root.join("images.idx");
    let labels = root.join("labels.idx");
    // Header claims 3 images of 2x2 (12 bytes) but holds 5.
    std::fs::write(
        &images,
        [
            0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5,
        ],
    )
    .unwrap();
    std::fs::write(&labels, [0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2]).unwrap();
    let err = message(read_pair(&images, &labels).unwrap_err());
    assert!(
        err.contains("images.idx") && err.contains("holds 5"),
        "{err}"
    );
    // Labels that do not match the images.
    std::fs::write(&images, [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9]).unwrap();
    let err = message(read_pair(&images, &labels).unwrap_err());
    assert!(err.contains("labels for 1 images"), "{err}");
}

#[test]
fn checkpoints_are_protected() {
    let root = common::temp_dir("protect");
    let data = root.join("data");
    common::synthetic_folder(&data, 2, 4, 16);
    let mut config = common::folder_config(&data);
    config.epochs = 1;
    let out = root.join("run");
    let stop = RunOptions {
        stop_after: Some(2),
        ..common::options(&out)
    };
    Finetune::new(config.clone(), &[Mode::Tune], stop.clone(), &device())
        .unwrap()
        .run(&mut Silent)
        .unwrap();
    let path = checkpoint_file(&out, Mode::Tune);
    let good = std::fs::read(&path).unwrap();

    // A new run does not silently replace it.
    let err = Finetune::new(config.clone(), &[Mode::Tune], stop.clone(), &device()).err();
    assert!(message(err.expect("refused")).contains("--resume"));
    // Resuming with other options is refused.
    let mut other = config.clone();
    other.optimizer.lr *= 2.0;
    let err = Finetune::resume(other, &[Mode::Tune], common::options(&out), &device()).err();
    assert!(message(err.expect("refused")).contains("other options"));
    // Resuming a mode that was not run is refused.
    let err = Finetune::resume(
        config.clone(),
        &[Mode::Eval],
        common::options(&out),
        &device(),
    )
    .err();
    assert!(message(err.expect("refused")).contains("no checkpoint"));
    assert_eq!(std::fs::read(&path).unwrap(), good, "checkpoint untouched");

    // A truncated (corrupted) checkpoint is reported, and left for the user to inspect.
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let err = Finetune::resume(
        config.clone(),
        &[Mode::Tune],
        common::options(&out),
        &device(),
    )
    .err();
    let err = message(err.expect("refused"));
    assert!(err.contains("not a usable checkpoint"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap().len(), good.len() / 2);
    // No temporary files are left next to it.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "checkpoint.safetensors" && n != "log.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_options_are_refused_before_any_work() {
    let root = common::temp_dir("options");
    let mut config = common::folder_config(&root);
    config.optimizer.lr = -1.0;
    assert!(message(config.validate().unwrap_err()).contains("--lr"));
    let mut config = common::folder_config(&root);
    config.size = 4;
    assert!(message(config.validate().unwrap_err()).contains("--size"));
    let mut config = common::folder_config(&root);
    config.epochs = 0;
    assert!(message(config.validate().unwrap_err()).contains("--epochs"));
}
