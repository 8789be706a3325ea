//! Checks on running statistics, shared by construction, mode switches and folding.

use burn::tensor::Tensor;

/// Describe what makes running statistics unusable, or `None` when they are fine.
///
/// Usable means: every mean and variance is finite and every variance is `>= 0` (so that
/// `var + eps > 0` for the block's positive `eps`). Reads the values back to the host.
pub(crate) fn statistics_problem(
    running_mean: &Tensor<1>,
    running_var: &Tensor<1>,
) -> Option<String> {
    let read = |t: &Tensor<1>| {
        t.clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .ok()
    };
    let (Some(mean), Some(var)) = (read(running_mean), read(running_var)) else {
        return Some("the statistics could not be read back as floats".into());
    };
    if let Some(c) = mean.iter().position(|m| !m.is_finite()) {
        return Some(format!("running_mean[{c}] = {} is not finite", mean[c]));
    }
    if let Some(c) = var.iter().position(|v| !v.is_finite()) {
        return Some(format!("running_var[{c}] = {} is not finite", var[c]));
    }
    if let Some(c) = var.iter().position(|v| *v < 0.0) {
        return Some(format!(
            "running_var[{c}] = {} is negative, so var + eps may not be positive",
            var[c]
        ));
    }
    None
}
