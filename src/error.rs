//! Error types shared across the roles and the engine, kept here (beneath every other module) so that
//! no role depends on the engine for them. [`RunError`]: a network failed on a batch (out-of-memory is
//! its own variant, so a caller can split the batch and retry). [`SetupError`]: a run could not start
//! (the configuration, the device, a model file). [`ConfigError`] and [`DeviceError`]: the user's to fix.

use tch::TchError;

/// What every network's forward pass returns: libtorch's error as a value, so an allocation failure
/// reaches the batch planner instead of aborting.
pub type TchResult<T> = Result<T, TchError>;

/// What is wrong with a run configuration, or with a value typed for one. Each is the user's to fix:
/// the command line treats them all as bad usage (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value typed for an option or a setting that is none of the accepted ones.
    #[error("{0}")]
    BadValue(String),
    /// Values outside their limits, each named ([`crate::config::RunConfig::validate`]).
    #[error("{}", .0.join("; "))]
    OutOfLimits(Vec<String>),
    /// A file the configuration names, or an add-on it asks for, is not there; says how to get it.
    #[error("{0}")]
    MissingFile(String),
    /// A checkpoint asked to run as a task it was not trained for.
    #[error("{0}")]
    WrongTask(String),
    /// A faces file (`--faces`) that cannot be read or is not in the `detect --json` layout.
    #[error("{0}")]
    FacesFile(String),
}

/// Why a device or precision cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "cuda:{index} was requested but libtorch sees no CUDA device (needs an NVIDIA GPU of the Turing generation or newer \
         with driver R580+); use --device cpu or auto"
    )]
    NoCuda { index: usize },
    #[error("cuda:{index} was requested but only {count} CUDA device(s) exist (cuda:0..cuda:{})", count - 1)]
    NoSuchCuda { index: usize, count: usize },
    #[error("fp16 runs on CUDA devices only; use fp32 (or bf16) on the CPU")]
    Fp16OnCpu,
}

/// What in a network's tensor shapes (or constructor arguments) rules out the configuration it is
/// read as: the reason inside the "does not hold a GPEN generator" kind of error, which adds the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

impl From<&str> for ShapeError {
    fn from(reason: &str) -> Self {
        ShapeError(reason.into())
    }
}

impl From<String> for ShapeError {
    fn from(reason: String) -> Self {
        ShapeError(reason)
    }
}

/// What stops a run (or a tool of it) from starting, as opposed to one photo or face failing.
/// Typed so a front end can tell the user's mistake (a value, a missing file, a device that is not
/// there: bad usage) from a failure of the machine or of a file's contents.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SetupError {
    /// The configuration cannot run as it is: a value out of its limits, a missing weights file or
    /// add-on, a task the checkpoint was not trained for.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The settings a run starts with are out of their limits.
    #[error("invalid settings: {0}")]
    InvalidSettings(ConfigError),
    /// The output folder cannot be made.
    #[error("cannot create {}: {reason}", path.display())]
    OutputFolder { path: std::path::PathBuf, reason: String },
    /// The device asked for is not there, or cannot run the precision asked for.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A network's file is there but does not load (not that network, damaged, a libtorch failure).
    #[error("{0}")]
    Load(String),
    /// A stage worker could not be given its tools.
    #[error("cannot start detection worker: {0}")]
    Worker(Box<SetupError>),
    /// Measuring the memory model failed.
    #[error("calibration failed: {0}")]
    Calibration(String),
    /// New settings were refused; the previous ones stay.
    #[error("settings not applied: {0}")]
    Settings(Box<SetupError>),
    /// The engine's thread panicked: a bug. Nothing more is processed until the program restarts.
    #[error("the engine stopped: {0}")]
    Crashed(String),
}

impl SetupError {
    /// The user's to fix (bad usage, exit status 2 on the command line): a value, a missing file, a
    /// device. A checkpoint made for another task is a wrong file, like one that does not load (1).
    pub fn is_usage(&self) -> bool {
        match self {
            SetupError::Config(ConfigError::WrongTask(_)) => false,
            SetupError::Config(_) | SetupError::InvalidSettings(_) | SetupError::Device(_) => true,
            SetupError::Worker(e) | SetupError::Settings(e) => e.is_usage(),
            SetupError::Load(_) | SetupError::OutputFolder { .. } | SetupError::Calibration(_) | SetupError::Crashed(_) => false,
        }
    }
}

/// An error from running a network.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// The device (GPU or host) could not allocate memory for this batch.
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    /// Any other libtorch failure (shape mismatch, broken CUDA context, ...).
    #[error("libtorch error: {0}")]
    Torch(String),
    /// Stopped between two steps because the run was cancelled or shut down (see [`Interrupt`]).
    #[error("stopped: the run was cancelled")]
    Interrupted,
}

/// Asked between the steps of a long network call (the upscaler's blocks and tiles): `true` stops
/// the call with [`RunError::Interrupted`]. The engine answers it from its command channel, so a
/// cancel does not wait for a whole photo's super-resolution.
pub type Interrupt<'a> = dyn FnMut() -> bool + 'a;

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
