//! Loops compiled for the widest vector instructions the CPU has, chosen at run time.
//!
//! The workspace is built for the x86-64 baseline (SSE2), so its vectorised loops use 4-lane
//! registers. [`widest!`] runs a block inside a function compiled for AVX-512F, or for AVX2,
//! when the CPU has it: the closure and what it inlines are compiled again with 16 or 8
//! lanes. The operations and their order do not change (Rust never contracts a multiply and
//! an add into an FMA, and IEEE 754 rounds square roots, divisions, products and sums
//! correctly at every width), so results are bit-identical whichever version runs.

/// `f()`, compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f()`, compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// The block `$body` as a closure run by [`run`]: `widest!({ ... })`. The closure is marked
/// `#[inline(always)]` so that it is compiled inside each version; functions it calls are
/// compiled that way only where they inline too (mark them `#[inline(always)]`). It captures
/// by value (`move`), so that scalars it reads are its own copies, which the compiler keeps
/// out of its loops; lend it buffers as `&mut` references.
macro_rules! widest {
    ($body:block) => {
        $crate::ops::widest::run(
            #[inline(always)]
            move || $body,
        )
    };
}
pub(crate) use widest;

/// `f()`, compiled for the widest vector instructions this CPU has (AVX-512F, AVX2 or the
/// baseline); use it through [`widest!`].
#[inline(always)]
pub(crate) fn run<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(test)]
mod tests {
    use crate::ops::lanes::dot_f64;

    /// The fold's operations (square root, division, products, sums) and the 32-lane dot
    /// product give the same bits in every compiled version this CPU can run.
    #[test]
    fn every_version_gives_the_same_bits() {
        let x: Vec<f32> = (0..1999)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 37.0)
            .collect();
        let y: Vec<f32> = (0..1999)
            .map(|i| ((i * 104_729 % 997) as f32) / 91.0 + 0.5)
            .collect();
        #[inline(always)]
        fn work(x: &[f32], y: &[f32]) -> (Vec<f32>, f64) {
            let fold = x
                .iter()
                .zip(y)
                .map(|(x, y)| (x * (1.0 / (y + 1e-5).sqrt())) + y / 3.0)
                .collect();
            (fold, dot_f64(x, y))
        }
        let baseline = work(&x, &y);
        let widest = super::run(
            #[inline(always)]
            || work(&x, &y),
        );
        assert_eq!(baseline, widest);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                let v = unsafe {
                    super::avx2(
                        #[inline(always)]
                        || work(&x, &y),
                    )
                };
                assert_eq!(baseline, v, "AVX2");
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                let v = unsafe {
                    super::avx512(
                        #[inline(always)]
                        || work(&x, &y),
                    )
                };
                assert_eq!(baseline, v, "AVX-512F");
            }
        }
    }
}
