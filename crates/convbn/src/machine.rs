//! The machine a CPU figure comes from, as `convbn bench` records it beside its results: the
//! CPU's model and the instruction-set flags its kernels depend on (what `lscpu` shows, read
//! from `/proc/cpuinfo`), the threads the kernels run on, the instruction set and cache
//! sizes the matrix products use, and their measured peak.
//!
//! The peak is measured, not computed from the data sheet: the best of 3 timed products
//! `C = A B` of 2048x2048 f32 matrices (after one untimed), with the same `gemm` crate,
//! dispatch and threads as the convolutions; `2 * 2048^3` operations over the time.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Instruction-set flags reported (of those in `/proc/cpuinfo`): the vector units the matrix
/// products and element-wise kernels can use.
const FLAGS: [&str; 10] = [
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_fp16",
];

/// Side of the square matrices of the peak measurement.
const PEAK_SIZE: usize = 2048;

/// What CPU a benchmark ran on and what its matrix products reach.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Machine {
    /// `model name` of the first processor in `/proc/cpuinfo` (`lscpu`'s "Model name").
    pub cpu_model: String,
    /// Which of the flags that matter here the CPU has (`lscpu`'s "Flags", filtered).
    pub flags: Vec<String>,
    /// Logical CPUs the process may run on.
    pub logical_cpus: usize,
    /// Threads of the kernels' thread pool (rayon).
    pub threads: usize,
    /// The instruction set the matrix products dispatch to on this CPU.
    pub gemm_instructions: String,
    /// L1, L2 and L3 data-cache bytes the matrix products size their blocks for (per core,
    /// as the `gemm` crate reads them from `/sys/devices/system/cpu`).
    pub gemm_cache_bytes: [usize; 3],
    /// Measured peak of the matrix products, GFLOP/s (see the module documentation).
    pub gemm_peak_gflops: f64,
}

impl Machine {
    /// Describe this machine, measuring the matrix products' peak (about half a second on
    /// two cores).
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let present: Vec<String> = field("flags")
            .map(|f| f.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let caches = *gemm_common::cache::CACHE_INFO;
        Self {
            cpu_model: field("model name").unwrap_or_else(|| "unknown".into()),
            flags: FLAGS
                .iter()
                .filter(|f| present.iter().any(|p| p == *f))
                .map(|f| f.to_string())
                .collect(),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads: rayon::current_num_threads(),
            gemm_instructions: gemm_instructions().into(),
            gemm_cache_bytes: [0, 1, 2].map(|i| caches[i].cache_bytes),
            gemm_peak_gflops: gemm_peak_gflops(PEAK_SIZE),
        }
    }

    /// One line: model, flags, threads, the products' instruction set and peak.
    pub fn summary(&self) -> String {
        format!(
            "{} ({}; {} logical CPUs, {} threads); matrix products: {}, L1/L2/L3 {}/{}/{} KiB, \
             peak {:.0} GFLOP/s",
            self.cpu_model,
            self.flags.join(" "),
            self.logical_cpus,
            self.threads,
            self.gemm_instructions,
            self.gemm_cache_bytes[0] / 1024,
            self.gemm_cache_bytes[1] / 1024,
            self.gemm_cache_bytes[2] / 1024,
            self.gemm_peak_gflops
        )
    }
}

/// The instruction set `gemm` (built with its `x86-v4` feature) dispatches f32 products to.
fn gemm_instructions() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512 (x86-64-v4)";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "AVX2+FMA (x86-64-v3)";
        }
        "SSE (baseline x86-64)"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

/// Best GFLOP/s of 3 timed `n x n` f32 products on all threads (after one untimed).
pub fn gemm_peak_gflops(n: usize) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
    let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect();
    let mut c = vec![0.0f32; n * n];
    let mut best = f64::INFINITY;
    for run in 0..4 {
        let start = Instant::now();
        // SAFETY: three distinct row-major `n x n` buffers of exactly `n * n` elements.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
        if run > 0 {
            best = best.min(start.elapsed().as_secs_f64());
        }
    }
    std::hint::black_box(&c);
    2.0 * (n as f64).powi(3) / best / 1e9
}
