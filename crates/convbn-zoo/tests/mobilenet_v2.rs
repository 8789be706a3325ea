//! torchvision's pretrained MobileNetV2 gives torchvision's logits in Eval, Tune and Deploy.

mod common;

use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};
use common::{argmax, asset, device, values};
use convbn::{Mode, set_mode};
use convbn_zoo::MobileNetV2;
use convbn_zoo::checkpoint::Checkpoint;
use convbn_zoo::load::{LoadOptions, load};

fn reference() -> Checkpoint {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mobilenet_v2_reference.safetensors");
    Checkpoint::from_safetensors(path).expect("reference fixture")
}

#[test]
fn pretrained_mobilenet_v2_matches_torchvision_logits_in_every_mode() {
    let Some(weights) = asset("mobilenet_v2") else {
        return;
    };
    let d = device();
    let checkpoint = Checkpoint::open(&weights).expect("legacy .pth");
    let mut model = MobileNetV2::new(1000, &d);
    let report = load(
        &mut model,
        &checkpoint,
        &MobileNetV2::torchvision_naming(),
        LoadOptions::default(),
    )
    .expect("strict load");
    assert!(report.is_clean());
    let reference = reference();
    for mode in [Mode::Eval, Mode::Tune, Mode::Deploy] {
        set_mode(&mut model, mode).unwrap();
        for (image, top1) in [(0, 967), (1, 285)] {
            let input = &reference.tensors[&format!("{image}.input")];
            let x = Tensor::<4>::from_data(
                TensorData::new(input.values.clone(), input.shape.clone()),
                &d,
            );
            let logits = values(&model.forward(x).unwrap());
            let expected = &reference.tensors[&format!("{image}.logits")].values;
            let max_diff = logits
                .iter()
                .zip(expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            println!("{mode} image {image}: max |logit - torchvision| = {max_diff:.2e}");
            assert!(
                max_diff <= 1e-3,
                "{mode} image {image}: max diff {max_diff}"
            );
            assert_eq!(argmax(&logits), top1, "{mode} image {image}");
        }
    }
}
