//! Where a training step's time goes on the CPU backend: the three convolution kernels
//! (forward, input gradient, weight gradient) of every layer shape of ResNet-50 or
//! MobileNetV2, burn's Flex kernels against the ones every mode's conv node runs
//! ([`convbn::ops::cpu`]), timed one by one, with their GFLOP/s, summed over the network.
//!
//! `cargo run --release -p convbn --example conv_kernels -- resnet50 8 224` (model, batch,
//! size). PyTorch's table: `bench/pytorch_reference.py kernels --batch 8 --size 224`.

use std::time::Instant;

use burn::backend::Flex;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use convbn::ConvGeometry;
use convbn::ops::cpu;

/// One layer shape: how many times the network has it, channels in and out, kernel, stride,
/// input side at 224x224, groups.
#[derive(Clone, Copy)]
struct Layer {
    count: usize,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    side: usize,
    groups: usize,
}

const fn layer(
    count: usize,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    side: usize,
) -> Layer {
    Layer {
        count,
        c_in,
        c_out,
        kernel,
        stride,
        side,
        groups: 1,
    }
}

/// ResNet-50's 53 convolutions by shape.
const RESNET50: [Layer; 23] = [
    layer(1, 3, 64, 7, 2, 224),
    layer(1, 64, 64, 1, 1, 56),
    layer(3, 64, 64, 3, 1, 56),
    layer(4, 64, 256, 1, 1, 56),
    layer(2, 256, 64, 1, 1, 56),
    layer(1, 256, 128, 1, 1, 56),
    layer(1, 128, 128, 3, 2, 56),
    layer(4, 128, 512, 1, 1, 28),
    layer(1, 256, 512, 1, 2, 56),
    layer(3, 512, 128, 1, 1, 28),
    layer(3, 128, 128, 3, 1, 28),
    layer(1, 512, 256, 1, 1, 28),
    layer(1, 256, 256, 3, 2, 28),
    layer(6, 256, 1024, 1, 1, 14),
    layer(1, 512, 1024, 1, 2, 28),
    layer(5, 1024, 256, 1, 1, 14),
    layer(5, 256, 256, 3, 1, 14),
    layer(1, 1024, 512, 1, 1, 14),
    layer(1, 512, 512, 3, 2, 14),
    layer(3, 512, 2048, 1, 1, 7),
    layer(1, 1024, 2048, 1, 2, 14),
    layer(2, 2048, 512, 1, 1, 7),
    layer(2, 512, 512, 3, 1, 7),
];

/// MobileNetV2's 52 convolutions (torchvision's inverted-residual settings).
fn mobilenet_v2() -> Vec<Layer> {
    let mut layers = vec![layer(1, 3, 32, 3, 2, 224)];
    let (mut c, mut side) = (32, 112);
    for (t, c_out, n, s) in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ] {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let hidden = c * t;
            if t != 1 {
                layers.push(layer(1, c, hidden, 1, 1, side));
            }
            layers.push(Layer {
                groups: hidden,
                ..layer(1, hidden, hidden, 3, stride, side)
            });
            side /= stride;
            layers.push(layer(1, hidden, c_out, 1, 1, side));
            c = c_out;
        }
    }
    layers.push(layer(1, 320, 1280, 1, 1, 7));
    layers
}

fn time(f: impl Fn()) -> f64 {
    f(); // warm-up
    let runs = 3;
    let start = Instant::now();
    for _ in 0..runs {
        f();
    }
    start.elapsed().as_secs_f64() * 1e3 / runs as f64
}

/// Values uniform in [-0.5, 0.5) from a fixed linear congruential sequence.
fn random(shape: [usize; 4]) -> FlexTensor {
    let mut state = shape.iter().product::<usize>() as u64;
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn sync(t: FloatTensor<Flex>) {
    let _ = t.into_data();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().map(String::as_str).unwrap_or("resnet50");
    let number = |i: usize, default: usize| {
        args.get(i)
            .map(|a| a.parse().expect("batch and size are integers"))
            .unwrap_or(default)
    };
    let (batch, size) = (number(1, 8), number(2, 224));
    let layers = match model {
        "resnet50" => RESNET50.to_vec(),
        "mobilenet_v2" => mobilenet_v2(),
        other => panic!("unknown model {other} (resnet50 or mobilenet_v2)"),
    };
    let mut totals = [0.0f64; 6];
    let mut total_flops = 0.0;
    println!(
        "{:>3} {:>5} {:>5} {:>2} {:>2} {:>4} {:>4} | {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} | GFLOP/s ours fwd / dX / dW",
        "n", "C_in", "C_out", "k", "s", "side", "grp", "fwd", "dX", "dW", "fwd", "dX", "dW"
    );
    println!("{:>31} | {:^23} | {:^23} |", "", "burn (ms)", "ours (ms)");
    for l in layers {
        let side = l.side * size / 224;
        let pad = l.kernel / 2;
        let geometry = ConvGeometry {
            stride: vec![l.stride; 2],
            padding: vec![(pad, pad); 2],
            dilation: vec![1; 2],
            groups: l.groups,
        };
        let out = geometry
            .output_size(&[side, side], &[l.kernel, l.kernel])
            .expect("layer fits");
        let x = random([batch, l.c_in, side, side]);
        let w = random([l.c_out, l.c_in / l.groups, l.kernel, l.kernel]);
        let g = random([batch, l.c_out, out[0], out[1]]);
        let x_shape = x.layout().shape().clone();
        let options = || geometry.options::<2>();
        let ms = [
            time(|| sync(Flex::conv2d(x.clone(), w.clone(), None, options()))),
            time(|| {
                sync(Flex::conv2d_x_backward(
                    x.clone(),
                    w.clone(),
                    g.clone(),
                    options(),
                ))
            }),
            time(|| {
                sync(Flex::conv2d_weight_backward(
                    x.clone(),
                    w.clone(),
                    g.clone(),
                    options(),
                ))
            }),
            time(|| sync(cpu::conv_forward(x.clone(), w.clone(), &geometry))),
            time(|| {
                sync(cpu::conv_input_gradient(
                    x_shape.clone(),
                    w.clone(),
                    g.clone(),
                    &geometry,
                ))
            }),
            time(|| {
                sync(cpu::conv_weight_gradient(
                    x.clone(),
                    w.clone(),
                    g.clone(),
                    &geometry,
                ))
            }),
        ];
        let flops = 2.0
            * (batch * l.c_out * out[0] * out[1] * (l.c_in / l.groups) * l.kernel * l.kernel)
                as f64;
        total_flops += flops * l.count as f64;
        for (t, v) in totals.iter_mut().zip(ms) {
            *t += v * l.count as f64;
        }
        let rate = |ms: f64| flops / ms / 1e6;
        println!(
            "{:>3} {:>5} {:>5} {:>2} {:>2} {side:>4} {:>4} | {:>7.2} {:>7.2} {:>7.2} | {:>7.2} {:>7.2} {:>7.2} | {:>6.1} {:>6.1} {:>6.1}",
            l.count,
            l.c_in,
            l.c_out,
            l.kernel,
            l.stride,
            l.groups,
            ms[0],
            ms[1],
            ms[2],
            ms[3],
            ms[4],
            ms[5],
            rate(ms[3]),
            rate(ms[4]),
            rate(ms[5])
        );
    }
    let rate = |ms: f64| total_flops / ms / 1e6;
    println!(
        "{model} convolutions (x count), batch {batch}, {size}x{size}, {:.1} GFLOP each kernel:",
        total_flops / 1e9
    );
    for (name, (burn, ours)) in ["forward", "input gradient", "weight gradient"]
        .iter()
        .zip(totals[..3].iter().zip(&totals[3..]))
    {
        println!(
            "  {name:<16} burn {burn:>7.0} ms ({:>5.1} GFLOP/s)   ours {ours:>7.0} ms ({:>5.1} GFLOP/s)",
            rate(*burn),
            rate(*ours)
        );
    }
}
