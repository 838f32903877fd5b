//! NVML, NVIDIA's management library: loaded (dlopen of libnvidia-ml) and initialised once per
//! process, since loading its symbols is slow. The memory probes and `info` read the GPUs through it.

use std::sync::OnceLock;

/// NVML could not be loaded or initialised: no NVIDIA driver, or no GPU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NVML not available: {0}")]
pub struct NvmlUnavailable(pub String);

/// The process's NVML, initialised on first use.
pub fn nvml() -> Result<&'static nvml_wrapper::Nvml, NvmlUnavailable> {
    static NVML: OnceLock<Result<nvml_wrapper::Nvml, NvmlUnavailable>> = OnceLock::new();
    NVML.get_or_init(|| nvml_wrapper::Nvml::init().map_err(|e| NvmlUnavailable(e.to_string()))).as_ref().map_err(Clone::clone)
}
