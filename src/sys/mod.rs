//! Every call into C and C++ code of our own, and into libc or the dynamic loader, each behind a safe
//! function: libtorch's CUDA allocator through a small C++ shim and the process's resident set
//! ([`memory`]), NVIDIA's management library ([`nvml`]), the versions of the libraries actually
//! loaded ([`runtime_versions`]), the one typed loader of loaded functions and the math libraries'
//! thread counts ([`symbols`]), limits, priorities and the heap ([`process`]), and signals
//! ([`signals`]).

pub mod memory;
pub mod nvml;
pub mod process;
pub mod runtime_versions;
pub mod signals;
pub mod symbols;
