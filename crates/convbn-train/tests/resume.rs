//! A run stopped mid-epoch and resumed ends with exactly the weights, optimizer state and log
//! of the uninterrupted run, in every mode (lock-step, Train mode's running statistics
//! included).

mod common;

use convbn::Mode;
use convbn_train::checkpoint::read;
use convbn_train::observer::Silent;
use convbn_train::trainer::checkpoint_file;
use convbn_train::{Finetune, RunOptions};

const MODES: [Mode; 4] = [Mode::Train, Mode::Eval, Mode::Tune, Mode::Deploy];

fn device() -> burn::tensor::Device {
    burn::tensor::Device::flex().autodiff()
}

#[test]
fn resumed_runs_equal_uninterrupted_runs() {
    let root = common::temp_dir("resume");
    let data = root.join("data");
    common::synthetic_folder(&data, 3, 8, 24);
    let mut config = common::folder_config(&data);
    // Train mode normalises 4 values per channel at MobileNetV2's 1x1 maps (32x32 input): at
    // lr 0.01 its random-init run is chaotic and, with the CPU kernels' rounding, reached a
    // NaN loss at step 7 (finite with burn's kernels). A run that diverges cannot show that
    // resuming reaches the end, so this one trains at 0.005.
    config.optimizer.lr = 0.005;

    let full = root.join("full");
    let logs_full = Finetune::new(config.clone(), &MODES, common::options(&full), &device())
        .unwrap()
        .run(&mut Silent)
        .unwrap();
    let steps = logs_full[0].iterations.len();
    assert_eq!(
        steps,
        2 * 18usize.div_ceil(4),
        "18 training images, batch 4, 2 epochs"
    );

    // Stop in the middle of the first epoch, then resume (in a new Finetune, as a new process
    // would) until the end.
    let split = root.join("split");
    let stopped = RunOptions {
        stop_after: Some(3),
        ..common::options(&split)
    };
    let partial = Finetune::new(config.clone(), &MODES, stopped, &device())
        .unwrap()
        .run(&mut Silent)
        .unwrap();
    assert_eq!(partial[0].iterations.len(), 3);
    assert!(partial[0].summary.is_none() && partial[0].epochs.is_empty());
    let logs_resumed = Finetune::resume(config.clone(), &MODES, common::options(&split), &device())
        .unwrap()
        .run(&mut Silent)
        .unwrap();

    for (mode, (a, b)) in MODES.iter().zip(logs_full.iter().zip(&logs_resumed)) {
        let losses = |l: &convbn_train::log::RunLog| -> Vec<f64> {
            l.iterations.iter().map(|r| r.loss).collect()
        };
        assert_eq!(losses(a), losses(b), "{mode}: loss sequences");
        assert_eq!(
            a.epochs, b.epochs,
            "{mode}: test accuracy and losses per epoch"
        );
        let fa = read(&checkpoint_file(&full, *mode)).unwrap();
        let fb = read(&checkpoint_file(&split, *mode)).unwrap();
        assert_eq!(fa.state.position, fb.state.position);
        let (ta, tb) = (fa.tensors().unwrap(), fb.tensors().unwrap());
        assert!(!ta.tensors.is_empty());
        assert_eq!(
            ta.tensors, tb.tensors,
            "{mode}: final weights (and running statistics) bit for bit"
        );
        // The optimizer state's bytes list parameters in hash-map order; its content is
        // checked through the weights, which every resumed momentum step produced.
        let limit = usize::MAX;
        assert!(!fa.optimizer(limit).unwrap().is_empty());
        assert!(!fb.optimizer(limit).unwrap().is_empty());
    }
    // Train mode updated its running statistics; Eval and Tune did not, and computed the same.
    let train = read(&checkpoint_file(&full, Mode::Train))
        .unwrap()
        .tensors()
        .unwrap();
    let eval = read(&checkpoint_file(&full, Mode::Eval))
        .unwrap()
        .tensors()
        .unwrap();
    let key = train
        .tensors
        .keys()
        .find(|k| k.ends_with("running_var"))
        .unwrap()
        .clone();
    assert_ne!(train.tensors[&key], eval.tensors[&key]);
    let _ = std::fs::remove_dir_all(&root);
}
