//! The one-line model switch: nested structs, Vecs and Options, selection by sub-module,
//! listing blocks, and errors that leave the model unchanged.

mod common;

use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use common::{device, values};
use convbn::{
    BlockInfo, ConvBn1d, ConvBn2d, ConvBnConfig, ConvBnError, Mode, blocks, set_mode,
    set_mode_under,
};

#[derive(Module, Debug)]
struct Stage {
    blocks: Vec<ConvBn2d>,
}

#[derive(Module, Debug)]
struct Backbone {
    stem: ConvBn2d,
    stages: Vec<Stage>,
    extra: Option<ConvBn2d>,
}

#[derive(Module, Debug)]
struct Model {
    backbone: Backbone,
    neck: [ConvBn2d; 2],
    head: Option<ConvBn1d>,
    absent: Option<ConvBn2d>,
    width: usize,
}

fn model() -> Model {
    let d = device();
    let c2 = |cin, cout| -> ConvBn2d {
        ConvBnConfig::new(cin, cout, [3, 3])
            .with_padding(1)
            .init(&d)
            .unwrap()
    };
    Model {
        backbone: Backbone {
            stem: c2(3, 4),
            stages: vec![
                Stage {
                    blocks: vec![c2(4, 4), c2(4, 4)],
                },
                Stage {
                    blocks: vec![c2(4, 4)],
                },
            ],
            extra: Some(c2(4, 4)),
        },
        neck: [c2(4, 4), c2(4, 4)],
        head: Some(
            ConvBnConfig::new(4, 2, [1])
                .with_bias(true)
                .init(&d)
                .unwrap(),
        ),
        absent: None,
        width: 4,
    }
}

fn modes(infos: &[BlockInfo]) -> Vec<(String, Mode)> {
    infos.iter().map(|b| (b.path.clone(), b.mode)).collect()
}

#[test]
fn lists_every_block_with_its_path_mode_and_shape() {
    let m = model();
    let infos = blocks(&m);
    let paths: Vec<&str> = infos.iter().map(|b| b.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "backbone.stem",
            "backbone.stages.0.blocks.0",
            "backbone.stages.0.blocks.1",
            "backbone.stages.1.blocks.0",
            "backbone.extra",
            "neck.0",
            "neck.1",
            "head",
        ]
    );
    assert!(
        infos.iter().all(|b| b.mode == Mode::Train),
        "fresh blocks train, like PyTorch"
    );
    assert_eq!(infos[0].weight_shape, vec![4, 3, 3, 3]);
    assert!(infos[0].affine && !infos[0].conv_bias);
    assert_eq!(infos[7].weight_shape, vec![2, 4, 1]);
    assert!(infos[7].conv_bias);
    assert_eq!(infos[0].num_params, 4 * 3 * 9 + 4 + 4);
}

#[test]
fn one_line_switches_every_block_of_a_nested_model() {
    let mut m = model();
    for mode in [Mode::Eval, Mode::Tune, Mode::Train, Mode::Tune] {
        set_mode(&mut m, mode).unwrap();
        assert!(blocks(&m).iter().all(|b| b.mode == mode), "{mode}");
        assert_eq!(m.backbone.stages[0].blocks[1].mode(), mode);
        assert_eq!(m.head.as_ref().unwrap().mode(), mode);
    }
    assert_eq!(m.width, 4, "non-module fields are kept");
}

#[test]
fn selects_blocks_under_named_sub_modules() {
    let mut m = model();
    set_mode(&mut m, Mode::Eval).unwrap();
    set_mode_under(&mut m, Mode::Tune, &["backbone.stages", "head"]).unwrap();
    let got = modes(&blocks(&m));
    let tuned: Vec<&str> = got
        .iter()
        .filter(|(_, mode)| *mode == Mode::Tune)
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(
        tuned,
        [
            "backbone.stages.0.blocks.0",
            "backbone.stages.0.blocks.1",
            "backbone.stages.1.blocks.0",
            "head"
        ]
    );
    assert_eq!(m.backbone.stem.mode(), Mode::Eval);
    assert_eq!(m.neck[0].mode(), Mode::Eval);

    // Dotted prefixes match whole path segments only.
    let err = set_mode_under(&mut m, Mode::Tune, &["back"]).unwrap_err();
    assert!(matches!(err, ConvBnError::NoBlocksUnder { .. }), "{err}");
    assert!(
        err.to_string().contains("backbone"),
        "lists where blocks are: {err}"
    );
    assert_eq!(modes(&blocks(&m)), got, "a failed switch changes nothing");
}

#[test]
fn deploy_folds_selected_blocks_and_keeps_outputs() {
    let d = device();
    let mut m = model();
    set_mode(&mut m, Mode::Eval).unwrap();
    let x = Tensor::<4>::random([2, 4, 6, 6], Distribution::Normal(0.0, 1.0), &d);
    let before = values(&m.neck[1].forward(x.clone()).unwrap());
    let params_before = m.num_params();
    set_mode_under(&mut m, Mode::Deploy, &["neck"]).unwrap();
    assert_eq!(m.neck[1].mode(), Mode::Deploy);
    assert!(m.neck[1].gamma.is_none() && m.neck[1].bias.is_some());
    assert_eq!(m.backbone.stem.mode(), Mode::Eval);
    let after = values(&m.neck[1].forward(x).unwrap());
    assert!(common::rel_l2(&after, &before) < 1e-6);
    // Each folded block trades gamma, beta (2C) for b' (C).
    assert_eq!(m.num_params(), params_before - 2 * 4);
    // Inference never un-folds.
    assert_eq!(m.valid().neck[1].mode(), Mode::Deploy);
    assert_eq!(m.valid().backbone.stem.mode(), Mode::Eval);
}

/// Folding creates new parameters; they must stay as trainable as the weight they replace, so
/// that a frozen model (attacks, feature extraction) computes no parameter gradients in Deploy.
#[test]
fn folding_keeps_frozen_blocks_frozen_and_trainable_blocks_trainable() {
    let d = device();
    for frozen in [true, false] {
        let mut block: ConvBn2d = ConvBnConfig::new(3, 4, [3, 3]).init(&d).unwrap();
        if frozen {
            block = block.no_grad();
        }
        set_mode(&mut block, Mode::Deploy).unwrap();
        let (w, b) = (block.weight.val(), block.bias.as_ref().unwrap().val());
        assert_eq!(w.is_require_grad(), !frozen, "frozen {frozen}: weight");
        assert_eq!(b.is_require_grad(), !frozen, "frozen {frozen}: bias");
        let x =
            Tensor::<4>::random([2, 3, 5, 5], Distribution::Normal(0.0, 1.0), &d).require_grad();
        let grads = block.forward(x.clone()).unwrap().sum().backward();
        assert!(x.grad(&grads).is_some());
        assert_eq!(
            w.grad(&grads).is_some(),
            !frozen,
            "frozen {frozen}: weight gradient"
        );
    }
}

#[test]
fn a_folded_block_refuses_other_modes_and_the_model_is_unchanged() {
    let mut m = model();
    set_mode(&mut m, Mode::Eval).unwrap();
    set_mode_under(&mut m, Mode::Deploy, &["backbone.extra"]).unwrap();
    let snapshot = modes(&blocks(&m));
    for mode in [Mode::Eval, Mode::Tune, Mode::Train] {
        let err = set_mode(&mut m, mode).unwrap_err();
        match &err {
            ConvBnError::FoldedBlock { path, requested } => {
                assert_eq!(path, "backbone.extra");
                assert_eq!(*requested, mode);
            }
            other => panic!("unexpected error {other}"),
        }
        assert!(err.to_string().contains("irreversible"), "{err}");
        assert_eq!(modes(&blocks(&m)), snapshot, "nothing switched");
    }
    // Switching only other blocks is fine; Deploy again is a no-op.
    set_mode_under(&mut m, Mode::Tune, &["neck"]).unwrap();
    set_mode(&mut m, Mode::Deploy).unwrap();
    assert!(blocks(&m).iter().all(|b| b.mode == Mode::Deploy));
}

#[test]
fn running_statistics_updated_in_train_mode_are_used_after_switching() {
    let d = device();
    let mut block: ConvBn2d = ConvBnConfig::new(2, 3, [1, 1]).init(&d).unwrap();
    let x = Tensor::<4>::random([4, 2, 5, 5], Distribution::Normal(3.0, 2.0), &d);
    block.forward(x.clone()).unwrap();
    set_mode(&mut block, Mode::Eval).unwrap();
    let mean = values(&block.running_mean.value());
    assert!(
        mean.iter().any(|m| m.abs() > 1e-3),
        "running mean moved: {mean:?}"
    );
    let eval = values(&block.forward(x.clone()).unwrap());
    set_mode(&mut block, Mode::Tune).unwrap();
    let tune = values(&block.forward(x).unwrap());
    assert!(common::rel_l2(&tune, &eval) < 1e-6);
}

#[test]
fn a_clone_has_running_statistics_of_its_own() {
    let d = device();
    let original: ConvBn2d = ConvBnConfig::new(2, 3, [1, 1])
        .with_mode(Mode::Train)
        .init(&d)
        .unwrap();
    let before = values(&original.running_mean.value_sync());
    let copy = original.clone();
    let x = Tensor::<4>::random([4, 2, 5, 5], Distribution::Normal(3.0, 2.0), &d);
    copy.forward(x).unwrap();
    let moved = values(&copy.running_mean.value_sync());
    assert!(
        moved.iter().zip(&before).any(|(a, b)| (a - b).abs() > 1e-3),
        "the copy's statistics moved: {moved:?}"
    );
    assert_eq!(
        values(&original.running_mean.value_sync()),
        before,
        "Train-mode updates on a clone must not reach the original"
    );
}
