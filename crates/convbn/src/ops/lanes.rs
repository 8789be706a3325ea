//! Vectorised dot products: independent accumulators, so that the compiler can keep them in
//! vector registers (a single running sum is one dependent addition per element).

/// `sum a_i * b_i` with eight independent accumulators (vectorised).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `sum a_i * b_i` over long slices: [`dot`] over blocks of 1024 (f32 partial sums),
/// accumulated in f64.
pub(crate) fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    a.chunks(1024)
        .zip(b.chunks(1024))
        .map(|(a, b)| f64::from(dot(a, b)))
        .sum()
}
