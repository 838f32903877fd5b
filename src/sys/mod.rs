//! Every call into C and C++ code of our own, and into libc or the dynamic loader: libtorch's CUDA
//! allocator through a small C++ shim and the process's resident set ([`memory`]), NVIDIA's
//! management library ([`nvml`]), and the versions of the libraries actually loaded ([`runtime_versions`]).

pub mod memory;
pub mod nvml;
pub mod runtime_versions;
