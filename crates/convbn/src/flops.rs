//! Floating-point operations of the convolutions a training step runs, counted as the model
//! runs: what `convbn bench` divides by a step's time (its GFLOP/s column).
//!
//! A convolution producing `[N, C_out, o...]` with `C_in / groups` input channels per group and
//! a kernel of `k...` taps costs
//!
//! `F = 2 N C_out prod(o) (C_in / groups) prod(k)`
//!
//! (one multiply and one add per tap) in forward, and `F` again for each gradient backward
//! computes: the input's when the input is tracked, the weight's when the weight is. Only the
//! convolution nodes of this crate count (every mode's convolution is one); BN, activations,
//! pooling and linear layers are not counted (under 1 % of a zoo CNN's operations).

use std::cell::Cell;

use burn::tensor::Shape;

thread_local! {
    static COUNTER: Cell<Option<f64>> = const { Cell::new(None) };
}

/// Run `f` (one forward of a model on this thread) and return its result with the
/// convolution operations of the training step it records: forward plus the gradients its
/// backward will compute.
pub fn count_convolution_flops<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let outer = COUNTER.with(|c| c.replace(Some(0.0)));
    let result = f();
    let counted = COUNTER.with(|c| c.replace(outer)).unwrap_or(0.0);
    if let Some(outer) = outer {
        COUNTER.with(|c| c.set(Some(outer + counted)));
    }
    (result, counted)
}

/// Operations of one convolution pass: `2 N C_out prod(o) (C_in / groups) prod(k)` from the
/// output's shape `[N, C_out, o...]` and the weight's `[C_out, C_in / groups, k...]`.
pub fn convolution_flops(weight: &Shape, output: &Shape) -> f64 {
    let per_output = weight.num_elements() / weight[0].max(1);
    2.0 * output.num_elements() as f64 * per_output as f64
}

/// Note a convolution that ran forward and will run `gradients` (0, 1 or 2) gradient passes,
/// when a count is under way on this thread.
pub(crate) fn record(weight: &Shape, output: &Shape, gradients: usize) {
    COUNTER.with(|c| {
        if let Some(total) = c.get() {
            c.set(Some(
                total + convolution_flops(weight, output) * (1 + gradients) as f64,
            ));
        }
    });
}
