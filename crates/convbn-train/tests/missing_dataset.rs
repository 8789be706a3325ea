//! A missing dataset is an error that says how to fetch it. Alone in its binary because it
//! points `CONVBN_CACHE` at an empty folder.

mod common;

use convbn::Mode;
use convbn_train::{DataSource, Finetune};

fn device() -> burn::tensor::Device {
    burn::tensor::Device::flex().autodiff()
}

#[test]
fn a_missing_dataset_says_how_to_fetch_it() {
    // An empty cache and no permission to download.
    let cache = common::temp_dir("nocache");
    // SAFETY: this binary's only test; no other thread reads the environment yet.
    unsafe { std::env::set_var("CONVBN_CACHE", &cache) };
    let mut config = common::folder_config(&cache);
    config.data = DataSource::FashionMnist;
    let err = Finetune::new(
        config,
        &[Mode::Tune],
        common::options(&cache.join("run")),
        &device(),
    );
    let err = err.err().expect("no dataset").to_string();
    assert!(err.contains("convbn fetch"), "{err}");
}
