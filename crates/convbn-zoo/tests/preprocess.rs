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

/// A deterministic 8-bit test pattern (a hash of the coordinates and channel).
fn pattern(c: u32) -> impl Fn(u32, u32) -> u8 {
    move |x, y| ((x.wrapping_mul(73) ^ y.wrapping_mul(151) ^ c.wrapping_mul(29)) % 251) as u8
}

/// Grey resampling (Fashion-MNIST, detection scenes) and per-channel resampling (the training
/// transform) are the RGB resampling that the torchvision test above checks: Pillow resamples
/// each 8-bit channel on its own, and so must we, up and down, in one or both directions.
#[test]
fn grey_and_per_channel_resampling_equal_the_rgb_resampling() {
    use convbn_zoo::image::resize_bilinear;
    use image::{GrayImage, Luma, Rgb, RgbImage};
    for ((w, h), (nw, nh)) in [
        ((28, 28), (64, 64)),
        ((28, 28), (24, 24)),
        ((97, 61), (40, 80)),
        ((5, 300), (5, 17)),
    ] {
        let rgb = RgbImage::from_fn(w, h, |x, y| {
            Rgb([pattern(0)(x, y), pattern(1)(x, y), pattern(2)(x, y)])
        });
        let resized = resize_bilinear(&rgb, nw, nh).expect("non-empty");
        assert_eq!(resized.dimensions(), (nw, nh));
        for c in 0..3 {
            let grey = GrayImage::from_fn(w, h, |x, y| Luma([pattern(c)(x, y)]));
            let alone = resize_bilinear(&grey, nw, nh).expect("non-empty");
            for (x, y, p) in alone.enumerate_pixels() {
                assert_eq!(
                    p.0[0],
                    resized.get_pixel(x, y).0[c as usize],
                    "{w}x{h} -> {nw}x{nh}"
                );
            }
        }
    }
    let empty = GrayImage::new(0, 3);
    assert!(resize_bilinear(&empty, 4, 4).is_none());
    assert!(resize_bilinear(&GrayImage::new(3, 3), 0, 4).is_none());
}

/// A JPEG or PNG cut short is an error naming the file, not an image half filled with grey
/// (libjpeg would fill it and the `image` crate accepts such JPEGs; Pillow refuses them).
#[test]
fn truncated_images_are_refused() {
    use convbn_zoo::image::open_rgb;
    let dir = std::env::temp_dir().join(format!("convbn-truncated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jpeg = std::fs::read(fixture("astronaut_q90.jpg")).unwrap();
    let whole = dir.join("whole.jpg");
    std::fs::write(&whole, &jpeg).unwrap();
    assert!(open_rgb(&whole).is_ok());
    // Pillow refuses all of these, the last (only the end-of-image marker missing)
    // included: "image file is truncated".
    for keep in [3000, jpeg.len() / 2, jpeg.len() - 2] {
        let cut = dir.join(format!("cut{keep}.jpg"));
        std::fs::write(&cut, &jpeg[..keep]).unwrap();
        let err = open_rgb(&cut)
            .expect_err("a truncated JPEG must be refused")
            .to_string();
        println!("{keep} of {} bytes: {err}", jpeg.len());
        assert!(
            err.contains("truncated") || err.contains("not a readable"),
            "{err}"
        );
        assert!(err.contains(&cut.display().to_string()), "{err}");
    }
    let mut png = Vec::new();
    image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let cut = dir.join("cut.png");
    std::fs::write(&cut, &png[..png.len() / 2]).unwrap();
    let err = open_rgb(&cut)
        .expect_err("a truncated PNG must be refused")
        .to_string();
    assert!(err.contains(&cut.display().to_string()), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
