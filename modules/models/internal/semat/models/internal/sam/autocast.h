// Mixed-precision autocast state, spelled for LibTorch 1.13 (Debian) and 2.x: 2.4 replaced the
// per-device functions (set_enabled / set_cpu_enabled, set_autocast_gpu_dtype ...) with ones
// taking the device type. Internal (torch) header, used by the trainer's bf16 option and by the
// activation checkpointing that must replay a block under the autocast it first ran with.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace semat::models::sam {

#if defined(TORCH_VERSION_MAJOR) && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))
#define SEMAT_AUTOCAST_BY_DEVICE_TYPE 1
#endif

/// Whether autocast is on for CUDA / CPU and to which dtype.
struct AutocastState {
  bool cuda = false, cpu = false;
  at::ScalarType cuda_dtype = at::kHalf, cpu_dtype = at::kBFloat16;

  static AutocastState current() {
    AutocastState s;
#ifdef SEMAT_AUTOCAST_BY_DEVICE_TYPE
    s.cuda = at::autocast::is_autocast_enabled(at::kCUDA);
    s.cpu = at::autocast::is_autocast_enabled(at::kCPU);
    s.cuda_dtype = at::autocast::get_autocast_dtype(at::kCUDA);
    s.cpu_dtype = at::autocast::get_autocast_dtype(at::kCPU);
#else
    s.cuda = at::autocast::is_enabled();
    s.cpu = at::autocast::is_cpu_enabled();
    s.cuda_dtype = at::autocast::get_autocast_gpu_dtype();
    s.cpu_dtype = at::autocast::get_autocast_cpu_dtype();
#endif
    return s;
  }

  void apply() const {
#ifdef SEMAT_AUTOCAST_BY_DEVICE_TYPE
    at::autocast::set_autocast_dtype(at::kCUDA, cuda_dtype);
    at::autocast::set_autocast_dtype(at::kCPU, cpu_dtype);
    at::autocast::set_autocast_enabled(at::kCUDA, cuda);
    at::autocast::set_autocast_enabled(at::kCPU, cpu);
#else
    at::autocast::set_autocast_gpu_dtype(cuda_dtype);
    at::autocast::set_autocast_cpu_dtype(cpu_dtype);
    at::autocast::set_enabled(cuda);
    at::autocast::set_cpu_enabled(cpu);
#endif
  }

  bool any() const { return cuda || cpu; }
};

/// Runs a scope under `state` (e.g. bf16 on one device), restoring the previous state after,
/// and drops autocast's weight-cast cache when the outermost autocast scope ends.
class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& state) : prev_(AutocastState::current()), on_(state.any()) {
    state.apply();
    if (on_) at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (on_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    prev_.apply();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState prev_;
  bool on_;
};

}  // namespace semat::models::sam
