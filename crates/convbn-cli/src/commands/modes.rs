//! `convbn modes`: what each mode keeps for backward and what it costs, for one layer shape.

use anyhow::{Context, Result};
use convbn::{ConvBnConfig, Mode};
use serde::Serialize;

use crate::commands::Format;

/// Layer shape to describe.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input channels.
    #[arg(long, default_value_t = 64)]
    in_channels: usize,
    /// Output channels.
    #[arg(long, default_value_t = 64)]
    out_channels: usize,
    /// Square kernel size.
    #[arg(long, default_value_t = 3)]
    kernel: usize,
    /// Stride.
    #[arg(long, default_value_t = 1)]
    stride: usize,
    /// Channel groups.
    #[arg(long, default_value_t = 1)]
    groups: usize,
    /// Input height and width.
    #[arg(long, default_value_t = 56)]
    size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Serialize, Debug)]
struct Row {
    mode: Mode,
    keeps_for_backward: &'static str,
    kept_bytes: usize,
    forward_flops: u64,
    backward_flops: u64,
    trains: &'static str,
}

/// Print the table.
pub fn run(args: Args) -> Result<()> {
    let config = ConvBnConfig::new(args.in_channels, args.out_channels, [args.kernel; 2])
        .with_stride(args.stride)
        .with_padding(args.kernel / 2)
        .with_groups(args.groups);
    // Validate the shape with the library's own rules (nothing is allocated).
    config.check::<4>().context("invalid layer shape")?;
    let overflow = || anyhow::anyhow!("the sizes overflow; choose smaller ones");
    let padded = args
        .size
        .checked_add(2 * (args.kernel / 2))
        .ok_or_else(overflow)?;
    if args.size == 0 || padded < args.kernel {
        anyhow::bail!(
            "--size {} is smaller than the --kernel {} (with padding {}): no output",
            args.size,
            args.kernel,
            args.kernel / 2
        );
    }
    let out = (padded - args.kernel) / args.stride + 1;
    let mul = |f: &[usize]| -> Result<usize> {
        f.iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .ok_or_else(overflow)
    };
    let f32s = 4usize;
    let x_bytes = mul(&[args.batch, args.in_channels, args.size, args.size, f32s])?;
    let y_elems = mul(&[args.batch, args.out_channels, out, out])?;
    let y_bytes = mul(&[y_elems, f32s])?;
    x_bytes.checked_add(y_bytes).ok_or_else(overflow)?;
    let per_output = mul(&[args.in_channels / args.groups, args.kernel, args.kernel])?;
    let w_elems = mul(&[args.out_channels, per_output])?;
    let conv_flops = mul(&[y_elems, per_output, 2])? as u64;
    // The largest count below (backward: twice the conv plus element-wise terms) must fit.
    (conv_flops.checked_mul(3))
        .and_then(|c| c.checked_add((y_elems as u64).checked_mul(16)?))
        .and_then(|c| c.checked_add((w_elems as u64).checked_mul(8)?))
        .ok_or_else(overflow)?;
    let (y, w) = (y_elems as u64, w_elems as u64);
    let rows = Mode::ALL.map(|mode| match mode {
        Mode::Train => Row {
            mode: Mode::Train,
            keeps_for_backward: "X, conv output Y (batch statistics)",
            kept_bytes: x_bytes + y_bytes,
            forward_flops: conv_flops + 6 * y,
            backward_flops: 2 * conv_flops + 8 * y,
            trains: "W, b, gamma, beta; updates running stats",
        },
        Mode::Eval => Row {
            mode: Mode::Eval,
            keeps_for_backward: "X, normalised Y",
            kept_bytes: x_bytes + y_bytes,
            forward_flops: conv_flops + 4 * y,
            backward_flops: 2 * conv_flops + 4 * y,
            trains: "W, b, gamma, beta",
        },
        Mode::Deploy => Row {
            mode: Mode::Deploy,
            keeps_for_backward: "X (W' is the parameter)",
            kept_bytes: x_bytes,
            forward_flops: conv_flops + y,
            backward_flops: 2 * conv_flops + y,
            trains: "W', b' (per-channel lr scaled by 1/s^2: unstable)",
        },
        Mode::Tune => Row {
            mode: Mode::Tune,
            keeps_for_backward: "X only (W' recomputed in backward)",
            kept_bytes: x_bytes,
            forward_flops: conv_flops + y + 2 * w,
            backward_flops: 2 * conv_flops + y + 5 * w,
            trains: "W, b, gamma, beta (gradients equal Eval's)",
        },
    });
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table => {
            println!(
                "ConvBN {}->{} k{} s{} g{} on {}x{}x{}x{} (output {}x{}x{}x{}), f32:",
                args.in_channels,
                args.out_channels,
                args.kernel,
                args.stride,
                args.groups,
                args.batch,
                args.in_channels,
                args.size,
                args.size,
                args.batch,
                args.out_channels,
                out,
                out
            );
            println!(
                "{:<7} {:<38} {:>12} {:>10} {:>10}  trains",
                "mode", "keeps for backward", "kept", "fwd GFLOP", "bwd GFLOP"
            );
            for r in &rows {
                println!(
                    "{:<7} {:<38} {:>12} {:>10.3} {:>10.3}  {}",
                    r.mode,
                    r.keeps_for_backward,
                    human_bytes(r.kept_bytes),
                    r.forward_flops as f64 / 1e9,
                    r.backward_flops as f64 / 1e9,
                    r.trains
                );
            }
            println!(
                "Tune keeps {:.0}% of Eval's activation bytes for this layer; measure a stack with \
                 `convbn bench-block`.",
                100.0 * x_bytes as f64 / (x_bytes + y_bytes) as f64
            );
        }
    }
    Ok(())
}

/// Bytes as a short human-readable string (KiB, MiB, GiB).
pub fn human_bytes(bytes: usize) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1048576 => format!("{:.1} KiB", b / 1024.0),
        1048576..1073741824 => format!("{:.1} MiB", b / 1048576.0),
        _ => format!("{:.2} GiB", b / 1073741824.0),
    }
}
