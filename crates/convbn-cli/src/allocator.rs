//! The process's heap policy: freed memory stays in the process for reuse.
//!
//! A training step allocates and frees the same large buffers (feature maps of 10-100 MB at
//! batch 8, 224x224) every iteration. glibc's defaults serve such blocks with fresh `mmap`s and
//! return them on free, so every step page-faults and zeroes them again: on ResNet-50 (batch 8,
//! 224x224, 2 cores) 16 % of Eval's and 6 % of Tune's step time (`convbn bench`, measured with
//! and without this policy; docs/performance.md). The command raises glibc's mmap and trim
//! thresholds so that freed blocks are reused instead; peak memory is unchanged, the resident
//! set simply does not shrink between steps. It also keeps every thread on glibc's main arena:
//! the kernels allocate scratch on the rayon threads too, and a thread's own arena lives in
//! 64 MiB heaps that glibc grows and shrinks with `mmap`/`munmap` whatever the thresholds, so
//! blocks freed there went back to the system and came back page-faulted and zeroed, with a
//! TLB shootdown on every core each time (ResNet-50, batch 1, 112x112: `smp_call_function_many_cond`
//! and `native_write_msr` were 24 % of the profile when the step ran on a rayon thread).
//! `CONVBN_MALLOC=system` keeps glibc's defaults.

/// Blocks below this many bytes come from the heap rather than their own `mmap`.
const MMAP_THRESHOLD: usize = 1 << 30;
/// Free memory at the top of the heap is returned to the system only above this many bytes.
const TRIM_THRESHOLD: usize = (1 << 31) - 1;
/// Arenas: one, the main heap, which the thresholds above govern.
const ARENA_MAX: usize = 1;

use std::sync::atomic::{AtomicBool, Ordering};

static IN_EFFECT: AtomicBool = AtomicBool::new(false);

/// Apply the policy to this process (glibc on Linux only), unless `CONVBN_MALLOC=system`.
pub fn keep_freed_memory() {
    let applied = std::env::var("CONVBN_MALLOC").as_deref() != Ok("system") && apply();
    IN_EFFECT.store(applied, Ordering::Relaxed);
}

/// Whether [`keep_freed_memory`] changed this process's heap policy.
pub fn in_effect() -> bool {
    IN_EFFECT.load(Ordering::Relaxed)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) == 1
            && libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX as libc::c_int) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

/// Give a child process that uses glibc's allocator (PyTorch in `bench`) the same policy,
/// through `GLIBC_TUNABLES` (unless the caller set that), so that comparisons run alike.
pub fn share_with(cmd: &mut std::process::Command) {
    if in_effect() && std::env::var_os("GLIBC_TUNABLES").is_none() {
        cmd.env(
            "GLIBC_TUNABLES",
            format!(
                "glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:\
                 glibc.malloc.trim_threshold={TRIM_THRESHOLD}:\
                 glibc.malloc.arena_max={ARENA_MAX}"
            ),
        );
    }
}
