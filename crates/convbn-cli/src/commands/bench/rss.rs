//! Peak resident set size of this process (Linux `/proc`), resettable.

/// Restart the kernel's peak-RSS record (`VmHWM`) from the current RSS. Returns false where
/// the kernel does not allow it (then the peak counts from process start).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size in bytes (`VmHWM`), or 0 where `/proc` is unavailable.
pub fn peak_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
