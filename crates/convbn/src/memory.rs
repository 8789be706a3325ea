//! A counting global allocator, to measure memory deterministically.
//!
//! Install it in a binary or test with
//! `#[global_allocator] static ALLOC: convbn::memory::CountingAlloc = convbn::memory::CountingAlloc;`
//! then read [`allocated`] (bytes live now) and [`peak`] (high-water mark since
//! [`reset_peak`]). Counts are process-wide and exact: every heap allocation of every thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes and their peak.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

fn add(bytes: usize) {
    let now = ALLOCATED.fetch_add(bytes, Ordering::Relaxed) + bytes;
    // A read first: most allocations set no new peak, and `fetch_max` is a locked
    // compare-and-swap loop on the shared counter's cache line for every one of them.
    if now > PEAK.load(Ordering::Relaxed) {
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

fn sub(bytes: usize) {
    ALLOCATED.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's layout and only updates counters.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            sub(layout.size());
            add(new_size);
        }
        new
    }
}

/// Bytes currently allocated through [`CountingAlloc`] (0 if it is not installed).
pub fn allocated() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// Highest [`allocated`] value since the last [`reset_peak`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Restart peak tracking from the current allocation.
pub fn reset_peak() {
    PEAK.store(allocated(), Ordering::Relaxed);
}

/// Whether [`CountingAlloc`] is installed as the global allocator (it has counted something).
pub fn is_counting() -> bool {
    let probe = Box::new([0u8; 64]);
    let seen = allocated() >= probe.len();
    drop(probe);
    seen
}
