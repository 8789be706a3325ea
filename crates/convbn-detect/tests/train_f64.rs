//! In f64, Eval and Tune detection training agree to rounding: the two modes compute the same
//! function and gradients, and their f32 differences are rounding that training amplifies.
//! (A process of its own: the CPU device's float type is fixed at first use.)

mod common;

use common::{config, f64_device, largest_relative_gap, losses, options, temp_dir};
use convbn::Mode;
use convbn_detect::train::observer::Quiet;
use convbn_detect::train::{DetectConfig, DetectTrain};

#[test]
fn in_f64_eval_and_tune_losses_and_ap_agree_to_rounding() {
    let dir = temp_dir("f64");
    let config = DetectConfig {
        epochs: 4,
        ..config(&dir)
    };
    let modes = [Mode::Eval, Mode::Tune];
    let logs = DetectTrain::new(config, &modes, options(&dir.join("o")), &f64_device())
        .unwrap()
        .run(&mut Quiet)
        .unwrap();
    let (a, b) = (losses(&logs[0]), losses(&logs[1]));
    assert_eq!(a.len(), 12);
    let worst = largest_relative_gap(&a, &b);
    assert!(worst < 1e-9, "largest relative loss gap {worst:e}");
    assert_eq!(logs[0].evaluations.len(), 4);
    for (e, t) in logs[0].evaluations.iter().zip(&logs[1].evaluations) {
        for (x, y) in e.stats.iter().zip(&t.stats) {
            assert!((x - y).abs() < 1e-6, "{:?} vs {:?}", e.stats, t.stats);
        }
    }
}
