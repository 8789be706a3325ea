//! burn's Learner on the FCOS detector: on one device it trains exactly what the lock-step
//! trainer trains (same batches, augmentation, optimizer and schedule: the same weights and
//! COCO numbers), and it runs data-parallel on two workers.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use common::{config, options, temp_dir};
use convbn::{Mode, set_mode};
use convbn_detect::learner::Parallelism;
use convbn_detect::learner::train_with_learner;
use convbn_detect::train::DetectTrain;
use convbn_detect::train::observer::Quiet;
use convbn_detect::train::trainer::{checkpoint_file, load_trained};

fn parameters<M: Module>(model: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend(data.try_to_vec::<f32>().expect("f32"));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

#[test]
fn the_learner_on_one_device_trains_the_lock_step_trainers_detector() {
    let dir = temp_dir("learner");
    let config = config(&dir);
    let device = Device::flex().autodiff();
    let logs = DetectTrain::new(
        config.clone(),
        &[Mode::Tune],
        options(&dir.join("lockstep")),
        &device,
    )
    .unwrap()
    .run(&mut Quiet)
    .unwrap();
    let (mut lockstep, _) = load_trained(
        &checkpoint_file(&dir.join("lockstep"), Mode::Tune),
        &device.clone().inner(),
    )
    .unwrap();
    set_mode(&mut lockstep, Mode::Tune).unwrap();
    let one = train_with_learner(
        &config,
        Mode::Tune,
        std::slice::from_ref(&device),
        Parallelism::Multi,
        &dir.join("one"),
        false,
    )
    .expect("learner, one device");
    assert_eq!(one.steps, logs[0].iterations.len());
    let (a, b) = (parameters(&one.model), parameters(&lockstep));
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-3))
        .fold(0.0f32, f32::max);
    let coco = logs[0].evaluations.last().unwrap().stats;
    println!(
        "learner vs lock-step: largest relative weight difference {worst:.2e}; AP {} vs {}",
        one.stats.stats[0], coco[0]
    );
    assert!(worst <= 1e-5, "weights differ by {worst}");
    assert_eq!(one.stats.stats, coco, "the same COCO numbers");

    // Two workers (burn's multi-device strategy on two handles of the CPU device).
    let two = train_with_learner(
        &config,
        Mode::Tune,
        &[device.clone(), device],
        Parallelism::Multi,
        &dir.join("two"),
        false,
    )
    .expect("learner, two workers");
    assert_eq!(two.steps, one.steps);
    let moved = parameters(&two.model)
        .iter()
        .zip(&a)
        .any(|(x, y)| x.is_finite() && x != y);
    assert!(moved && two.stats.stats.iter().all(|s| s.is_finite()));
    let _ = std::fs::remove_dir_all(&dir);
}
