//! Our preprocessing equals torchvision's (`Resize(256)`, `CenterCrop(224)`, `ToTensor`,
//! `Normalize` on a PIL image) on the reference images of
//! `tests/fixtures/preprocess_reference.safetensors` (from `../shared/fixtures`): every image
//! within one grey level (max abs diff <= 0.02 in normalised units, mean <= 0.002) and
//! MobileNetV2's top-1 probability on our tensors within 0.005 of torchvision's. The JPEG is
//! held to the PNGs' bounds although a decoder difference would be allowed (mean <= 0.01,
//! top-1 within 0.01): it is decoded by libjpeg-turbo, as Pillow does (measured: identical).

mod common;

use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData, activation::softmax};
use common::{argmax, asset, values};
use convbn::{Mode, set_mode};
use convbn_zoo::MobileNetV2;
use convbn_zoo::checkpoint::Checkpoint;
use convbn_zoo::image::preprocess;
use convbn_zoo::load::{LoadOptions, load};

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `(image, file, max abs diff bound, mean abs diff bound, top-1 probability bound)`.
fn cases() -> Vec<(&'static str, Option<PathBuf>, f32, f32, f32)> {
    vec![
        ("coffee", asset("coffee"), 0.02, 0.002, 0.005),
        ("chelsea", asset("chelsea"), 0.02, 0.002, 0.005),
        (
            "astronaut_q90",
            Some(fixture("astronaut_q90.jpg")),
            0.02,
            0.002,
            0.005,
        ),
    ]
}

#[test]
fn preprocessing_matches_torchvision_and_so_do_the_probabilities() {
    let reference = Checkpoint::from_safetensors(fixture("preprocess_reference.safetensors"))
        .expect("reference fixture");
    let device = burn::tensor::Device::flex();
    let model = asset("mobilenet_v2").map(|weights| {
        let mut model = MobileNetV2::new(1000, &device);
        let checkpoint = Checkpoint::open(&weights).expect("weights");
        load(
            &mut model,
            &checkpoint,
            &MobileNetV2::torchvision_naming(),
            LoadOptions::default(),
        )
        .expect("strict load");
        set_mode(&mut model, Mode::Eval).unwrap();
        model
    });
    for (name, file, max_bound, mean_bound, prob_bound) in cases() {
        let Some(file) = file else {
            continue; // skipped under CONVBN_SKIP_ASSETS=1
        };
        let ours = preprocess(&file, 256, 224, MEAN, STD, &device).unwrap();
        let got = values(&ours);
        let theirs = &reference.tensors[&format!("{name}.input")];
        assert_eq!(ours.dims().to_vec(), theirs.shape, "{name}");
        let diffs: Vec<f32> = got
            .iter()
            .zip(&theirs.values)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let max = diffs.iter().copied().fold(0.0, f32::max);
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        println!("{name}: input max |ours - torchvision| = {max:.4}, mean = {mean:.5}");
        assert!(max <= max_bound, "{name}: max abs diff {max}");
        assert!(mean <= mean_bound, "{name}: mean abs diff {mean}");
        let Some(model) = &model else { continue };
        let probs = values(&softmax(model.forward(ours).unwrap(), 1));
        let expected = &reference.tensors[&format!("{name}.probs")].values;
        let top = argmax(expected);
        assert_eq!(argmax(&probs), top, "{name}: top-1 class");
        let dp = (probs[top] - expected[top]).abs();
        println!(
            "{name}: top-1 {top} p = {:.4} (torchvision {:.4}, |diff| {dp:.4})",
            probs[top], expected[top]
        );
        assert!(dp <= prob_bound, "{name}: top-1 probability off by {dp}");
        // torchvision's own tensor through our model gives its probabilities (the model is
        // not where a difference would come from).
        let x = Tensor::<4>::from_data(
            TensorData::new(theirs.values.clone(), theirs.shape.clone()),
            &device,
        );
        let on_theirs = values(&softmax(model.forward(x).unwrap(), 1));
        assert!((on_theirs[top] - expected[top]).abs() < 1e-3, "{name}");
    }
}
