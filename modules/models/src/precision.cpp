#include "semat/models/precision.h"

#include <ATen/detail/CUDAHooksInterface.h>

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "semat/core/error.h"

namespace semat::models {

const char* precision_name(Precision p) { return p == Precision::kBFloat16 ? "bf16" : "fp32"; }

namespace {

bool cpuid_native_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  // The OS must save the ZMM / opmask state (XCR0 bits 5-7) and, for AMX, the tile state
  // (bits 17-18); otherwise the instructions fault.
  __cpuid(1, a, b, c, d);
  if ((c & (1u << 27)) == 0) return false;  // OSXSAVE
  unsigned xlo = 0, xhi = 0;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  const bool zmm = (xlo & 0xE6u) == 0xE6u;
  const bool tiles = (xlo & (3u << 17)) == (3u << 17);
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx512f = (b & (1u << 16)) != 0;
  const bool amx_bf16 = (d & (1u << 22)) != 0;
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  if (a >= 1) __cpuid_count(7, 1, a1, b1, c1, d1);  // a: highest sub-leaf of leaf 7
  const bool avx512_bf16 = (a1 & (1u << 5)) != 0;
  return (amx_bf16 && tiles) || (avx512f && avx512_bf16 && zmm);
#else
  return false;
#endif
}

}  // namespace

bool cpu_has_native_bf16() {
  if (const char* env = std::getenv("SEMAT_CPU_BF16"); env != nullptr && *env != '\0')
    return std::strcmp(env, "0") != 0;
  static const bool native = cpuid_native_bf16();
  return native;
}

Precision resolve_precision(const std::string& requested, const std::string& device) {
  const bool cuda = device.rfind("cuda", 0) == 0;
  // Compute capability >= 8.0 (Ampere on): what LibTorch's hooks answer for bf16 convolutions.
  const bool native = cuda ? at::detail::getCUDAHooks().supportsBFloat16ConvolutionWithCuDNNv8()
                           : cpu_has_native_bf16();
  if (requested == "fp32" || requested == "float32") return Precision::kFloat32;
  if (requested == "auto") return native ? Precision::kBFloat16 : Precision::kFloat32;
  if (requested == "bf16" || requested == "bfloat16") {
    SEMAT_CHECK(native, ConfigError,
                "--precision bf16: this " << (cuda ? "GPU" : "CPU")
                                          << " has no native bfloat16 matrix units ("
                                          << (cuda ? "compute capability 8.0 or later"
                                                   : "AMX-BF16 or AVX512-BF16")
                                          << "); use --precision fp32 or auto");
    return Precision::kBFloat16;
  }
  throw ConfigError("--precision " + requested + ": use auto, fp32 or bf16");
}

}  // namespace semat::models
