//! Attacks on the real photos with the pretrained MobileNetV2 (needs the cached assets).

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use convbn::{Mode, set_mode};
use convbn_attack::agreement::relative_l2 as rel_l2;
use convbn_attack::{AttackConfig, Method, Norm, attack};
use convbn_zoo::image::{load_crop, normalize};
use convbn_zoo::pretrained::{Weights, build};
use convbn_zoo::{Architecture, Model};

#[global_allocator]
static ALLOC: convbn::memory::CountingAlloc = convbn::memory::CountingAlloc;

use convbn_zoo::assets::for_test as photo;

fn models(device: &Device) -> Option<Vec<(Mode, Model)>> {
    photo("mobilenet_v2")?;
    let base = build(Architecture::MobileNetV2, &Weights::ImageNet, false, device)
        .unwrap()
        .no_grad();
    Some(
        [Mode::Eval, Mode::Tune, Mode::Deploy]
            .into_iter()
            .map(|mode| {
                let mut m = base.clone();
                set_mode(&mut m, mode).unwrap();
                (mode, m)
            })
            .collect(),
    )
}

const NORM: ([f32; 3], [f32; 3]) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);

fn top1(model: &Model, x: &Tensor<4>) -> usize {
    let logits = model
        .forward(normalize(Tensor::from_inner(x.clone()), NORM.0, NORM.1))
        .unwrap();
    logits.inner().argmax(1).into_scalar::<i64>() as usize
}

fn pgd(target: Option<usize>) -> AttackConfig {
    AttackConfig {
        method: Method::Pgd,
        norm: Norm::Linf,
        eps: 4.0 / 255.0,
        alpha: 1.0 / 255.0,
        steps: 10,
        target,
        random_start: true,
        seed: 0,
    }
}

#[test]
fn pgd_flips_every_photo_and_reaches_targets_with_tune_cheaper_than_eval() {
    let device = Device::flex().autodiff();
    let Some(models) = models(&device) else {
        return;
    };
    let plain = device.clone().inner();
    for name in ["coffee", "chelsea", "astronaut"] {
        let Some(path) = photo(name) else { return };
        let clean = load_crop(&path, 256, 224, &plain).unwrap();
        let (_, eval) = &models[0];
        let label = top1(eval, &clean);
        let mut runs = Vec::new();
        for (mode, model) in &models[..2] {
            let out = attack(model, &clean, NORM, label, &pgd(None), &device).unwrap();
            let adv_top1 = top1(model, &out.adversarial);
            assert_ne!(
                adv_top1, label,
                "{name} {mode}: PGD did not flip the top-1 class"
            );
            assert!(Norm::Linf.measure(&out.perturbation) <= 4.0 / 255.0 + 1e-6);
            runs.push((adv_top1, out));
        }
        let (e, t) = (&runs[0].1, &runs[1].1);
        let peak = |o: &convbn_attack::Outcome| o.steps.iter().map(|s| s.peak_bytes).max().unwrap();
        println!(
            "{name}: first-step gradient rel L2 {:.2e}; peak per step eval {} tune {} B",
            rel_l2(&e.first_gradient, &t.first_gradient),
            peak(e),
            peak(t)
        );
        assert!(
            (peak(t) as f64) < 0.6 * peak(e) as f64,
            "{name}: tune {} eval {}",
            peak(t),
            peak(e)
        );
        // Targeted: "goldfish" (1) from every photo.
        let (_, tune) = &models[1];
        let out = attack(tune, &clean, NORM, label, &pgd(Some(1)), &device).unwrap();
        assert_eq!(
            top1(tune, &out.adversarial),
            1,
            "{name}: targeted PGD missed"
        );
    }
}

/// Tune's input gradient differs from Eval's by float rounding only: no more than Eval's own
/// gradient moves when the input is perturbed at the level of f32 rounding.
#[test]
fn tune_input_gradients_differ_from_eval_only_by_rounding() {
    let device = Device::flex().autodiff();
    let Some(models) = models(&device) else {
        return;
    };
    let plain = device.clone().inner();
    let Some(path) = photo("coffee") else { return };
    let clean = load_crop(&path, 256, 224, &plain).unwrap();
    let fgsm = AttackConfig {
        method: Method::Fgsm,
        ..pgd(None)
    };
    let grad = |model: &Model, x: &Tensor<4>| {
        attack(model, x, NORM, 967, &fgsm, &device)
            .unwrap()
            .first_gradient
    };
    let eval = grad(&models[0].1, &clean);
    let tune = grad(&models[1].1, &clean);
    let deploy = grad(&models[2].1, &clean);
    // Perturb the input by about one f32 rounding step (relative 1e-7).
    plain.seed(5);
    let noise = Tensor::<4>::random(clean.shape(), Distribution::Uniform(-1e-7, 1e-7), &plain);
    let nudged = clean.clone() * (noise + 1.0);
    let eval_nudged = grad(&models[0].1, &nudged);
    let floor = rel_l2(&eval, &eval_nudged);
    let (t, d) = (rel_l2(&eval, &tune), rel_l2(&eval, &deploy));
    println!("rel L2 vs eval: tune {t:.2e}, deploy {d:.2e}; eval vs nudged eval {floor:.2e}");
    assert!(t > 0.0 || floor >= 0.0);
    assert!(
        t <= 3.0 * floor.max(1e-6),
        "tune {t:.2e} vs rounding floor {floor:.2e}"
    );
}
