//! Bad input gives a clear error, never a panic, and loses nothing.

mod common;

use burn::tensor::{Distribution, Tensor};
use common::{device, tensor};
use convbn::{ConvBn2d, ConvBn3d, ConvBnConfig, ConvBnError, ConvBnTensors, Mode, set_mode};

fn block(mode: Mode) -> ConvBn2d {
    ConvBnConfig::new(4, 6, [3, 3])
        .with_padding(1)
        .with_mode(mode)
        .init(&device())
        .unwrap()
}

fn tensors(mean: Vec<f32>, var: Vec<f32>) -> ConvBnTensors<4> {
    let d = device();
    ConvBnTensors {
        weight: Tensor::random([2, 3, 1, 1], Distribution::Default, &d),
        bias: None,
        gamma: Some(Tensor::ones([2], &d)),
        beta: Some(Tensor::zeros([2], &d)),
        running_mean: tensor(mean, vec![2], &d),
        running_var: tensor(var, vec![2], &d),
    }
}

#[test]
fn wrong_channel_count_is_an_error_in_every_mode() {
    for mode in Mode::ALL {
        let b = block(mode);
        let x = Tensor::<4>::zeros([2, 5, 8, 8], &device());
        let err = b.forward(x).unwrap_err();
        assert!(
            matches!(err, ConvBnError::InputShape { .. }),
            "{mode}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("[2, 5, 8, 8]") && msg.contains("in_channels = 4"),
            "{msg}"
        );
    }
}

#[test]
fn input_smaller_than_the_kernel_is_an_error() {
    let b: ConvBn2d = ConvBnConfig::new(4, 6, [5, 5])
        .with_mode(Mode::Tune)
        .init(&device())
        .unwrap();
    let err = b
        .forward(Tensor::zeros([1, 4, 3, 8], &device()))
        .unwrap_err();
    assert!(matches!(err, ConvBnError::InputShape { .. }), "{err}");
}

#[test]
fn train_mode_needs_more_than_one_value_per_channel() {
    let b: ConvBn2d = ConvBnConfig::new(4, 6, [1, 1]).init(&device()).unwrap();
    let err = b
        .forward(Tensor::zeros([1, 4, 1, 1], &device()))
        .unwrap_err();
    assert!(
        err.to_string().contains("more than one value per channel"),
        "{err}"
    );
}

#[test]
fn kernel_rank_must_match_the_tensor_rank() {
    let err = ConvBnConfig::new(4, 6, [3, 3])
        .init::<5>(&device())
        .unwrap_err();
    assert!(err.to_string().contains("use ConvBn2d"), "{err}");
    let ok: Result<ConvBn3d, _> = ConvBnConfig::new(4, 6, [3, 3, 3]).init(&device());
    assert!(ok.is_ok());
}

#[test]
fn inconsistent_configurations_are_errors() {
    let d = device();
    let cases = [
        ConvBnConfig::new(4, 6, [3, 3]).with_groups(4),
        ConvBnConfig::new(0, 6, [3, 3]),
        ConvBnConfig::new(4, 6, [0, 3]),
        ConvBnConfig::new(4, 6, [3, 3]).with_stride([1, 2, 3]),
        ConvBnConfig::new(4, 6, [3, 3]).with_stride(0),
        ConvBnConfig::new(4, 6, [3, 3]).with_eps(0.0),
        ConvBnConfig::new(4, 6, [3, 3]).with_eps(f64::NAN),
        ConvBnConfig::new(4, 6, [3, 3]).with_momentum(1.5),
        ConvBnConfig::new(4, 6, [3, 3]).with_padding_pairs(vec![(1, 1)]),
    ];
    for config in cases {
        let result: Result<ConvBn2d, _> = config.init(&d);
        let err = result.expect_err("invalid configuration accepted");
        assert!(matches!(err, ConvBnError::InvalidConfig(_)), "{err}");
    }
}

#[test]
fn wrong_parameter_shapes_are_named() {
    let mut t = tensors(vec![0.0, 0.0], vec![1.0, 1.0]);
    t.weight = Tensor::zeros([2, 3, 3, 3], &device());
    let err = ConvBnConfig::new(3, 2, [1, 1]).init_with(t).unwrap_err();
    assert!(
        matches!(&err, ConvBnError::ParamShape { name: "weight", got, expected } if got == &[2, 3, 3, 3] && expected == &[2, 3, 1, 1]),
        "{err}"
    );
    let mut t = tensors(vec![0.0, 0.0], vec![1.0, 1.0]);
    t.gamma = Some(Tensor::ones([3], &device()));
    let err = ConvBnConfig::new(3, 2, [1, 1]).init_with(t).unwrap_err();
    assert!(err.to_string().contains("'gamma'"), "{err}");
    let t = tensors(vec![0.0, 0.0], vec![1.0, 1.0]);
    let err = ConvBnConfig::new(3, 2, [1, 1])
        .with_bias(true)
        .init_with(t)
        .unwrap_err();
    assert!(err.to_string().contains("'bias'"), "{err}");
}

#[test]
fn nan_infinite_and_negative_statistics_are_rejected() {
    let config = ConvBnConfig::new(3, 2, [1, 1]).with_mode(Mode::Eval);
    for (mean, var, needle) in [
        (vec![0.0, f32::NAN], vec![1.0, 1.0], "running_mean[1] = NaN"),
        (
            vec![0.0, 0.0],
            vec![f32::INFINITY, 1.0],
            "running_var[0] = inf",
        ),
        (
            vec![0.0, 0.0],
            vec![1.0, -0.5],
            "running_var[1] = -0.5 is negative",
        ),
    ] {
        let err = config.init_with(tensors(mean, var)).unwrap_err();
        assert!(
            matches!(err, ConvBnError::InvalidStatistics { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn statistics_corrupted_in_training_block_switches_and_lose_nothing() {
    let d = device();
    let mut b = block(Mode::Train);
    // A NaN batch poisons the running statistics.
    let x = Tensor::<4>::full([2, 4, 5, 5], f32::NAN, &d);
    b.forward(x).unwrap();
    for mode in [Mode::Eval, Mode::Tune, Mode::Deploy] {
        let err = set_mode(&mut b, mode).unwrap_err();
        assert!(
            matches!(err, ConvBnError::InvalidStatistics { .. }),
            "{mode}: {err}"
        );
        assert_eq!(b.mode(), Mode::Train, "the block stays as it was");
        assert!(b.gamma.is_some());
    }
    assert!(b.validate().is_err());
}

#[test]
fn unknown_mode_names_are_errors() {
    assert_eq!("Tune".parse::<Mode>().unwrap(), Mode::Tune);
    let err = "fast".parse::<Mode>().unwrap_err();
    assert!(
        err.to_string().contains("train, eval, deploy, tune"),
        "{err}"
    );
}
