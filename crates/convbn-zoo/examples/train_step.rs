//! Memory and time of one training step of a zoo model in each mode, modes interleaved.
//!
//! `cargo run --release -p convbn-zoo --example train_step -- mobilenet_v2 8 224 5`
//! (architecture, batch, size, timed steps).

use burn::tensor::{Device, Distribution, Tensor};
use convbn::measure::{measure_step, median};
use convbn::memory::CountingAlloc;
use convbn::{Mode, set_mode};
use convbn_zoo::{Architecture, Model};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arch: Architecture = args
        .first()
        .map_or("mobilenet_v2", String::as_str)
        .parse()?;
    let batch: usize = args.get(1).map_or(Ok(8), |s| s.parse())?;
    let size: usize = args.get(2).map_or(Ok(224), |s| s.parse())?;
    let steps: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let device = Device::flex().autodiff();
    let modes = [Mode::Eval, Mode::Tune, Mode::Deploy];
    let models = modes
        .iter()
        .map(|&mode| {
            let mut m = Model::new(arch, 1000, &device);
            set_mode(&mut m, mode).map(|_| m)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let input = || {
        Tensor::<4>::random(
            [batch, 3, size, size],
            Distribution::Normal(0.0, 1.0),
            &device,
        )
    };
    let mut times = vec![Vec::new(); modes.len()];
    let mut retained = vec![0; modes.len()];
    for step in 0..=steps {
        for (i, model) in models.iter().enumerate() {
            let cost = measure_step(input(), |x| model.forward(x))?;
            if step > 0 {
                times[i].push(cost.step_ms);
                retained[i] = cost.retained_bytes;
            }
        }
    }
    println!("{arch} batch {batch} {size}x{size}, median of {steps} interleaved steps:");
    for (i, mode) in modes.iter().enumerate() {
        println!(
            "  {:<6} step {:>8.1} ms   retained {:>12} B   ({:.3}x eval time, {:.3}x eval memory)",
            mode.to_string(),
            median(&times[i]),
            retained[i],
            median(&times[i]) / median(&times[0]),
            retained[i] as f64 / retained[0] as f64
        );
    }
    Ok(())
}
