//! Vectorised dot products: independent accumulators, so that the compiler can keep them in
//! vector registers (a single running sum is one dependent addition per element).

/// `sum a_i * b_i` with `L` independent accumulators (vectorised).
#[inline(always)]
fn dot_lanes<const L: usize>(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..L {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `sum a_i * b_i` with eight independent accumulators (vectorised).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes::<8>(a, b)
}

/// `sum a_i * b_i` over long slices: blocks of 1024 summed with 32 f32 accumulators each
/// (two AVX-512 registers), the block sums accumulated in f64. Inline, so that
/// [`widest`](super::widest::widest) compiles it for the CPU's vectors.
#[inline(always)]
pub(crate) fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    // A loop rather than an iterator's `sum`, whose fold would not inline.
    let mut total = 0.0f64;
    for (a, b) in a.chunks(1024).zip(b.chunks(1024)) {
        total += f64::from(dot_lanes::<32>(a, b));
    }
    total
}
