//! Error types shared by the engine. Out-of-memory is its own variant so callers (the batch planner,
//! the CLI) can split a batch and retry instead of giving up.

use tch::TchError;

/// An error from running a network.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The device (GPU or host) could not allocate memory for this batch.
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    /// Any other libtorch failure (shape mismatch, broken CUDA context, ...).
    #[error("libtorch error: {0}")]
    Torch(String),
}

impl RunError {
    pub fn is_oom(&self) -> bool {
        matches!(self, RunError::OutOfMemory(_))
    }
}

impl From<TchError> for RunError {
    fn from(err: TchError) -> Self {
        let message = first_line(&err.to_string());
        if is_oom_message(&message) { RunError::OutOfMemory(message) } else { RunError::Torch(message) }
    }
}

/// libtorch appends a C++ backtrace to every exception; users need only the first line
/// (rust-stack.md §1b: `TORCH_SHOW_CPP_STACKTRACES=0` does not remove it).
pub fn first_line(message: &str) -> String {
    let message = message.strip_prefix("Internal torch error: ").unwrap_or(message);
    message.lines().next().unwrap_or("").trim().to_string()
}

/// Allocation failures look different depending on where they happen: the CUDA caching allocator
/// ("CUDA out of memory"), raw CUDA ("CUDA error: out of memory"), cuBLAS/cuDNN
/// ("CUBLAS_STATUS_ALLOC_FAILED"), or the CPU allocator ("DefaultCPUAllocator: not enough memory").
pub fn is_oom_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("out of memory")
        || lower.contains("alloc_failed")
        || lower.contains("not enough memory")
        || lower.contains("bad_alloc")
        || lower.contains("cannot allocate memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_allocation_failures_from_every_allocator() {
        for msg in [
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 7.6 GiB",
            "CUDA error: out of memory",
            "CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate 4294967296 bytes.",
            "std::bad_alloc",
        ] {
            assert!(is_oom_message(msg), "{msg}");
        }
        assert!(!is_oom_message("Given groups=1, weight of size [64, 3, 1, 1], expected input[1, 4, 64, 64]"));
    }

    #[test]
    fn keeps_only_the_first_line_of_a_torch_error() {
        let err = TchError::Torch("CUDA out of memory. Tried to allocate 1 GiB\nException raised from malloc at ...\nframe #0".into());
        match RunError::from(err) {
            RunError::OutOfMemory(m) => assert_eq!(m, "CUDA out of memory. Tried to allocate 1 GiB"),
            other => panic!("expected OOM, got {other:?}"),
        }
    }
}
