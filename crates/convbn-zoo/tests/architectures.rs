//! Every architecture builds, runs forward and backward at 224x224 and 64x64, switches modes,
//! and has torchvision's parameter count.

mod common;

use burn::tensor::{Distribution, Tensor};
use common::device;
use convbn::{Mode, blocks, set_mode};
use convbn_zoo::{Architecture, Model};

/// torchvision's parameter counts at 1000 classes (`sum(p.numel() for p in m.parameters())`).
fn torchvision_params(arch: Architecture) -> Option<usize> {
    use Architecture as A;
    Some(match arch {
        A::ResNet18 => 11_689_512,
        A::ResNet34 => 21_797_672,
        A::ResNet50 => 25_557_032,
        A::ResNet101 => 44_549_160,
        A::ResNeXt50_32x4d => 25_028_904,
        A::WideResNet50_2 => 68_883_240,
        A::MobileNetV2 => 3_504_872,
        A::Vgg11Bn => 132_868_840,
        A::Vgg16Bn => 138_365_992,
        A::RegNetX400mf => 5_495_976,
        A::EfficientNetLite0 => return None,
    })
}

#[test]
fn parameter_counts_equal_torchvision() {
    let d = burn::tensor::Device::flex();
    for arch in Architecture::ALL {
        let model = Model::new(arch, 1000, &d);
        let count = convbn::trainable_parameters(&model);
        println!("{arch}: {count} parameters");
        if let Some(expected) = torchvision_params(arch) {
            assert_eq!(count, expected, "{arch}");
        }
    }
}

fn forward_backward(model: &Model, size: usize) {
    let d = device();
    let x =
        Tensor::<4>::random([1, 3, size, size], Distribution::Normal(0.0, 1.0), &d).require_grad();
    let logits = model.forward(x.clone()).expect("forward");
    assert_eq!(logits.dims(), [1, 10]);
    let grads = logits.sum().backward();
    assert!(x.grad(&grads).is_some());
}

#[test]
fn every_architecture_runs_forward_and_backward_and_switches_modes() {
    let d = device();
    for arch in Architecture::ALL {
        let mut model = Model::new(arch, 1000, &d).with_num_classes(10, &d).unwrap();
        set_mode(&mut model, Mode::Tune).unwrap();
        forward_backward(&model, 224);
        forward_backward(&model, 64);
        set_mode(&mut model, Mode::Train).unwrap();
        forward_backward(&model, 64);
        set_mode(&mut model, Mode::Deploy).unwrap();
        assert!(blocks(&model).iter().all(|b| b.mode == Mode::Deploy));
        forward_backward(&model, 64);
        println!("{arch}: ok, {} ConvBN blocks", blocks(&model).len());
    }
}
