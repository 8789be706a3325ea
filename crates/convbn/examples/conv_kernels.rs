//! Where a training step's time goes on the backend: the three convolution kernels of every
//! ResNet-50 layer shape (forward, input gradient, weight gradient: burn's default and
//! [`convbn::ops::conv_weight_gradient`]) timed one by one, with their GFLOP/s, summed over
//! the network's layers.
//!
//! `cargo run --release -p convbn --example conv_kernels -- 8 224` (batch, size). The same
//! table for PyTorch: `bench/pytorch_reference.py kernels --batch 8 --size 224`.

use std::time::Instant;

use burn::backend::Dispatch;
use burn::backend::ops::ModuleOps;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};

/// `(count in ResNet-50, C_in, C_out, kernel, stride, input side at 224)`.
const LAYERS: [(usize, usize, usize, usize, usize, usize); 23] = [
    (1, 3, 64, 7, 2, 224),
    (1, 64, 64, 1, 1, 56),
    (3, 64, 64, 3, 1, 56),
    (4, 64, 256, 1, 1, 56),
    (2, 256, 64, 1, 1, 56),
    (1, 256, 128, 1, 1, 56),
    (1, 128, 128, 3, 2, 56),
    (4, 128, 512, 1, 1, 28),
    (1, 256, 512, 1, 2, 56),
    (3, 512, 128, 1, 1, 28),
    (3, 128, 128, 3, 1, 28),
    (1, 512, 256, 1, 1, 28),
    (1, 256, 256, 3, 2, 28),
    (6, 256, 1024, 1, 1, 14),
    (1, 512, 1024, 1, 2, 28),
    (5, 1024, 256, 1, 1, 14),
    (5, 256, 256, 3, 1, 14),
    (1, 1024, 512, 1, 1, 14),
    (1, 512, 512, 3, 2, 14),
    (3, 512, 2048, 1, 1, 7),
    (1, 1024, 2048, 1, 2, 14),
    (2, 2048, 512, 1, 1, 7),
    (2, 512, 512, 3, 1, 7),
];

fn time(f: impl Fn()) -> f64 {
    f(); // warm-up
    let runs = 3;
    let start = Instant::now();
    for _ in 0..runs {
        f();
    }
    start.elapsed().as_secs_f64() * 1e3 / runs as f64
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("batch and size are integers"))
        .collect();
    let (batch, size) = (
        args.first().copied().unwrap_or(8),
        args.get(1).copied().unwrap_or(224),
    );
    let device = Device::flex();
    let mut totals = [0.0f64; 4];
    println!(
        "{:>4} {:>5} {:>5} {:>2} {:>2} {:>4} | {:>8} {:>8} {:>8} {:>8} | GFLOP/s fwd / dX / dW / ours",
        "n", "C_in", "C_out", "k", "s", "side", "fwd ms", "dX ms", "dW ms", "ours ms"
    );
    for (count, cin, cout, k, stride, side224) in LAYERS {
        let side = side224 * size / 224;
        let pad = k / 2;
        let x = Tensor::<4>::random(
            [batch, cin, side, side],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let w = Tensor::<4>::random([cout, cin, k, k], Distribution::Normal(0.0, 1.0), &device);
        let options = ConvOptions::new([stride; 2], [pad; 2], [1, 1], 1);
        let out_side = (side + 2 * pad - k) / stride + 1;
        let g = Tensor::<4>::random(
            [batch, cout, out_side, out_side],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let flops = 2.0 * (batch * cout * out_side * out_side * cin * k * k) as f64;
        let prim = |t: &Tensor<4>| t.clone().into_dispatch();
        let sync = |t: burn::backend::tensor::FloatTensor<Dispatch>| {
            let _ = Tensor::<4>::from_dispatch(t).into_data();
        };
        let fwd = time(|| sync(Dispatch::conv2d(prim(&x), prim(&w), None, options.clone())));
        let dx = time(|| {
            sync(Dispatch::conv2d_x_backward(
                prim(&x),
                prim(&w),
                prim(&g),
                options.clone(),
            ))
        });
        let dw = time(|| {
            sync(Dispatch::conv2d_weight_backward(
                prim(&x),
                prim(&w),
                prim(&g),
                options.clone(),
            ))
        });
        let geometry = convbn::ConvGeometry {
            stride: vec![stride; 2],
            padding: vec![(pad, pad); 2],
            dilation: vec![1; 2],
            groups: 1,
        };
        let ours = time(|| {
            sync(convbn::ops::conv_weight_gradient::<Dispatch>(
                prim(&x),
                prim(&w),
                prim(&g),
                &geometry,
            ))
        });
        for (t, v) in totals.iter_mut().zip([fwd, dx, dw, ours]) {
            *t += v * count as f64;
        }
        let rate = |ms: f64| flops / ms / 1e6;
        println!(
            "{count:>4} {cin:>5} {cout:>5} {k:>2} {stride:>2} {side:>4} | {fwd:>8.2} {dx:>8.2} {dw:>8.2} {ours:>8.2} | {:>6.1} {:>6.1} {:>6.1} {:>6.1}",
            rate(fwd),
            rate(dx),
            rate(dw),
            rate(ours)
        );
    }
    println!(
        "ResNet-50 convolutions (x count), batch {batch}, {size}x{size}: forward {:.0} ms, input gradient {:.0} ms, weight gradient {:.0} ms (burn's kernel) / {:.0} ms (ours)",
        totals[0], totals[1], totals[2], totals[3]
    );
}
