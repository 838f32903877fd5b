// libtorch's caching-allocator statistics for our own process, which tch 0.26 does not bind
// (tch-rs#896). Uses the device-generic at::accelerator API of libtorch 2.13, so no CUDA headers
// are needed; without an accelerator every call returns an error string instead of crashing.
#include <ATen/DeviceAccelerator.h>
#include <cstdint>
#include <cstring>

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
}
