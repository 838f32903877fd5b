// libtorch's caching-allocator statistics for our own process, which tch 0.26 does not bind
// (tch-rs#896). Uses the device-generic at::accelerator API of libtorch 2.13, so no CUDA headers
// are needed; without an accelerator every call returns an error string instead of crashing.
// Also what the loaded libtorch says about itself (src/runtime_versions.rs): its configuration
// text, the file it was loaded from, and the CUDA and cuDNN versions of its CUDA part.
#include <ATen/DeviceAccelerator.h>
#include <ATen/Version.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <cstdint>
#include <cstring>
#include <dlfcn.h>

extern "C" {
struct GpenAllocatorStats {
  int64_t allocated_current, allocated_peak, reserved_current, reserved_peak, num_ooms;
};

char* gpen_allocator_stats(int device, GpenAllocatorStats* out) {
  try {
    auto s = at::accelerator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    out->allocated_current = s.allocated_bytes[0].current;
    out->allocated_peak = s.allocated_bytes[0].peak;
    out->reserved_current = s.reserved_bytes[0].current;
    out->reserved_peak = s.reserved_bytes[0].peak;
    out->num_ooms = s.num_ooms;
    return nullptr;
  } catch (const std::exception& e) {
    return strdup(e.what());
  }
}

char* gpen_allocator_reset_peak(int device) {
  try {
    at::accelerator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
    return nullptr;
  } catch (const std::exception& e) {
    return strdup(e.what());
  }
}

char* gpen_allocator_empty_cache() {
  try {
    at::accelerator::emptyCache();
    return nullptr;
  } catch (const std::exception& e) {
    return strdup(e.what());
  }
}

// at::show_config() of the loaded library (its "Build settings" name TORCH_VERSION).
char* gpen_torch_show_config() {
  try {
    return strdup(at::show_config().c_str());
  } catch (const std::exception& e) {
    return nullptr;
  }
}

// The path of the shared object that defines at::show_config (libtorch_cpu.so), or null.
char* gpen_torch_library_path() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&at::show_config), &info) == 0 || info.dli_fname == nullptr) {
    return nullptr;
  }
  return strdup(info.dli_fname);
}

// The CUDA runtime (13000 = 13.0) and cuDNN (92000 = 9.20.0) libtorch was built with; -1 where
// libtorch has no CUDA part or no cuDNN. Neither needs a GPU. (The loaded libraries' own versions
// are asked of them directly: src/runtime_versions.rs.)
void gpen_torch_cuda_versions(int64_t* cudart, int64_t* cudnn_built) {
  *cudart = *cudnn_built = -1;
  try { *cudart = at::detail::getCUDAHooks().versionCUDART(); } catch (const std::exception&) {}
  try { *cudnn_built = at::detail::getCUDAHooks().versionCuDNN(); } catch (const std::exception&) {}
}
}
