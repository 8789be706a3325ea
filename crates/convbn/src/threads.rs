//! Where a training step runs on the CPU backend: on one of its compute threads.
//!
//! burn's CPU backend (and this crate's kernels) split every operation over rayon's global
//! pool. Called from a thread outside the pool, each parallel operation is handed to the pool
//! and the caller sleeps until it is done: two cross-thread wake-ups per operation, several
//! thousand per step (ResNet-50 or MobileNetV2, batch 1: about 2,300 context switches per
//! step), while the calling core idles. Called from a pool thread, an operation runs on that
//! thread and the others join in: the caller's core works. PyTorch's OpenMP does the same (its
//! calling thread is one of the team). On 2 cores at batch 1, 112x112 this made
//! MobileNetV2's training step 18-31 % faster (`convbn bench`, docs/performance.md); at batch
//! 8, 224x224 the difference was within run-to-run noise.

/// Run `f` on one of the CPU backend's compute threads and return its result; inline when
/// already on one (or without the CPU backend). A panic in `f` propagates to the caller.
///
/// Which thread runs `f` can change from call to call. Thread-local state set by the caller
/// (e.g. [`crate::flops::count_convolution_flops`]) is not seen inside `f`: start such scopes
/// inside it. burn's running statistics (`RunningState`, the BN statistics that Train mode
/// updates) are kept per thread and averaged over threads when read, so Train-mode steps must
/// not go through this function: their statistics would mix updates made on different
/// threads. Eval, Tune and Deploy never update them: the lock-step trainer (`finetune`,
/// `compare-modes`, `detect train`) runs their steps here and Train's on the calling thread;
/// `convbn bench` runs every mode here (its Train-mode statistics are never read).
pub fn on_compute_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "flex")]
    {
        if rayon::current_thread_index().is_some() {
            f()
        } else {
            rayon::scope(|_| f())
        }
    }
    #[cfg(not(feature = "flex"))]
    f()
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::on_compute_threads;

    #[test]
    fn runs_on_a_pool_thread_and_returns_the_result() {
        assert!(rayon::current_thread_index().is_none());
        let (index, value) = on_compute_threads(|| (rayon::current_thread_index(), 6 * 7));
        assert!(index.is_some(), "ran on a pool thread");
        assert_eq!(value, 42);
        // Nested: inline on the same thread.
        let same = on_compute_threads(|| {
            let outer = rayon::current_thread_index();
            on_compute_threads(|| rayon::current_thread_index() == outer)
        });
        assert!(same);
    }

    #[test]
    fn panics_reach_the_caller() {
        let caught = std::panic::catch_unwind(|| on_compute_threads(|| panic!("inside")));
        assert!(caught.is_err());
    }
}
