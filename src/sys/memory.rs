//! Memory readings used by benchmarks (and, later, the batch planner): libtorch's CUDA allocator
//! through a small C++ shim (rust-stack.md §1c) and the process's resident set on the CPU.

use std::ffi::{CStr, c_char, c_int};

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct AllocatorStats {
    pub allocated_current: i64,
    pub allocated_peak: i64,
    pub reserved_current: i64,
    pub reserved_peak: i64,
    pub num_ooms: i64,
}

unsafe extern "C" {
    fn gpen_allocator_stats(device: c_int, out: *mut AllocatorStats) -> *mut c_char;
    fn gpen_allocator_reset_peak(device: c_int) -> *mut c_char;
    fn gpen_allocator_empty_cache() -> *mut c_char;
}

/// A failure reported by libtorch's CUDA allocator through the shim (no CUDA device, a bad index):
/// the first line of the C++ exception's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AllocatorError(pub String);

fn check(err: *mut c_char) -> Result<(), AllocatorError> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: the shim returns either null or a strdup'ed NUL-terminated string we now own.
    let text = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
    unsafe { libc::free(err.cast()) };
    Err(AllocatorError(crate::error::first_line(&text)))
}

/// Allocator statistics of CUDA device `device` for this process.
pub fn allocator_stats(device: usize) -> Result<AllocatorStats, AllocatorError> {
    let mut out = AllocatorStats::default();
    check(unsafe { gpen_allocator_stats(device as c_int, &mut out) })?;
    Ok(out)
}

pub fn reset_peak(device: usize) -> Result<(), AllocatorError> {
    check(unsafe { gpen_allocator_reset_peak(device as c_int) })
}

/// Returns cached, unused GPU blocks to the driver (PyTorch's `torch.cuda.empty_cache()`).
pub fn empty_cache() -> Result<(), AllocatorError> {
    check(unsafe { gpen_allocator_empty_cache() })
}

/// Current and peak resident set of this process in bytes (`VmRSS`, `VmHWM`).
pub fn process_rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets the kernel's peak-RSS counter of this process (`echo 5 > /proc/self/clear_refs`), so the
/// next `process_rss().1` is the peak since now. Returns false where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_peak_follows_a_large_allocation() {
        // Linux (what CI runs) has both /proc/self/status and clear_refs; elsewhere this fails loudly.
        let (before, _) = process_rss().expect("/proc/self/status has VmRSS and VmHWM");
        assert!(reset_peak_rss(), "/proc/self/clear_refs accepts 5 (reset the peak resident set)");
        let block = vec![1u8; 256 << 20];
        std::hint::black_box(&block);
        let (_, peak) = process_rss().unwrap();
        assert!(peak >= before + (200 << 20), "peak {peak} before {before}");
    }

    #[test]
    fn allocator_stats_error_cleanly_without_a_gpu() {
        if tch::Cuda::is_available() {
            assert!(allocator_stats(0).is_ok());
        } else {
            let err = allocator_stats(0).unwrap_err();
            assert!(!err.0.is_empty());
        }
    }
}
