//! In f64, Eval and Tune give the same attacks: the first step's input gradients agree far
//! below 1e-4 relative L2, every photo ends with the same outcome, and the adversarial images
//! are (nearly) pixel-identical after 10 PGD steps. In f32 they cannot be: there, rounding
//! amplified by ReLU6's kinks moves even Eval's own gradient by ~4e-3 (see `photos.rs`).
//!
//! Its own test binary: burn fixes the CPU device's float type at the first tensor, so this
//! process makes it f64 before anything else runs.

use burn::module::Module;
use burn::tensor::{Device, DeviceConfig, FloatDType, Tensor};
use convbn::{Mode, set_mode};
use convbn_attack::agreement::{identical, relative_l2, to_8bit};
use convbn_attack::{AttackConfig, Method, Norm, attack};
use convbn_zoo::image::{load_crop, normalize};
use convbn_zoo::pretrained::{Weights, build};
use convbn_zoo::{Architecture, Model};

use convbn_zoo::assets::for_test as photo;

const NORM: ([f32; 3], [f32; 3]) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);

fn top1(model: &Model, x: &Tensor<4>) -> usize {
    let logits = model
        .forward(normalize(Tensor::from_inner(x.clone()), NORM.0, NORM.1))
        .unwrap();
    logits.inner().argmax(1).into_scalar::<i64>() as usize
}

fn values(x: &Tensor<4>) -> Vec<f64> {
    x.clone().into_data().convert::<f64>().try_to_vec().unwrap()
}

#[test]
fn eval_and_tune_attacks_agree_in_f64() {
    let mut plain = Device::flex();
    plain
        .configure(DeviceConfig {
            float_dtype: Some(FloatDType::F64),
            ..Default::default()
        })
        .expect("first use of the CPU device in this process");
    let device = plain.clone().autodiff();
    if photo("mobilenet_v2").is_none() {
        return;
    }
    let base = build(
        Architecture::MobileNetV2,
        &Weights::ImageNet,
        false,
        &device,
    )
    .unwrap()
    .no_grad();
    let [eval, tune] = [Mode::Eval, Mode::Tune].map(|mode| {
        let mut m = base.clone();
        set_mode(&mut m, mode).unwrap();
        m
    });
    let config = AttackConfig {
        method: Method::Pgd,
        norm: Norm::Linf,
        eps: 4.0 / 255.0,
        alpha: 1.0 / 255.0,
        steps: 10,
        target: None,
        random_start: true,
        seed: 0,
    };
    for name in ["coffee", "chelsea", "astronaut"] {
        let Some(path) = photo(name) else { return };
        let clean = load_crop(&path, 256, 224, &plain).unwrap();
        assert_eq!(clean.dtype(), burn::tensor::DType::F64);
        let label = top1(&eval, &clean);
        assert_eq!(
            label,
            top1(&tune, &clean),
            "{name}: clean predictions differ"
        );
        let e = attack(&eval, &clean, NORM, label, &config, &device).unwrap();
        let t = attack(&tune, &clean, NORM, label, &config, &device).unwrap();
        let gradient = relative_l2(&e.first_gradient, &t.first_gradient);
        let (pe, pt) = (
            to_8bit(&values(&e.adversarial)),
            to_8bit(&values(&t.adversarial)),
        );
        let same = identical(&pe, &pt) as f64 / pe.len() as f64;
        let (ye, yt) = (top1(&eval, &e.adversarial), top1(&tune, &t.adversarial));
        println!(
            "{name}: first-step gradient rel L2 {gradient:.2e}, identical pixels {:.4}%, \
             top-1 {label} -> eval {ye} / tune {yt}",
            100.0 * same
        );
        assert!(gradient <= 1e-4, "{name}: gradients differ by {gradient:e}");
        assert!(same >= 0.99, "{name}: only {same} of the pixels agree");
        assert_eq!(ye, yt, "{name}: different final top-1");
        assert_ne!(ye, label, "{name}: the attack did not flip the top-1 class");
        assert!(Norm::Linf.measure(&t.perturbation) <= 4.0 / 255.0 + 1e-9);
    }
}
