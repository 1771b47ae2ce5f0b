// Arithmetic precision of the image encoders (SAM / HQ-SAM ViT, SAM 2's Hiera trunk, the SEMat
// encoder with either backbone, IS-Net):
// float32 (the reference every parity test runs in) or bfloat16 where the hardware has native
// bf16 matrix units. Torch-free header.
//
// In bf16 the encoder's weights are converted once at load and its activations stay bf16 from the
// patch embedding to the last block; the rest stays float32 because that is what keeps results
// right at no real cost: the ViT neck (LayerNorm2d statistics over 256 channels), SAM 2's FPN
// neck (the Hiera stage outputs go back to float32), the prompt
// encoder, the mask decoders, the SEMat matting decoder and the closed-form solve. Inside the
// bf16 blocks, LayerNorm statistics and the softmax are accumulated in float32 by LibTorch's
// kernels (their bf16 inputs are widened), and every matrix product accumulates in float32
// (oneDNN) before rounding its output to bf16.
#pragma once

#include <string>

namespace semat::models {

enum class Precision { kFloat32, kBFloat16 };

/// "fp32" or "bf16": what --json and /v1/info report.
const char* precision_name(Precision p);

/// Whether this CPU has native bfloat16 matrix instructions: AMX-BF16 or AVX512-BF16 (cpuid, read
/// at run time, with the OS saving the AVX-512 state). Test hook: the environment variable
/// SEMAT_CPU_BF16=0 forces "no", SEMAT_CPU_BF16=1 forces "yes" (the latter only for tests of the
/// refusal's opposite; LibTorch still needs the instructions to run bf16 fast).
bool cpu_has_native_bf16();

/// The precision a model on `device` ("cpu", "cuda", "cuda:N": the resolved device) runs in for
/// the requested one: "auto" = bf16 where the hardware has native bf16 matrix units (a CPU per
/// cpu_has_native_bf16(), a CUDA device with compute capability >= 8.0), else fp32; "fp32" /
/// "float32"; "bf16" / "bfloat16". Throws ConfigError (one line naming --precision and the fix)
/// for an unknown name and for bf16 on hardware without native bf16 (it would run, but several
/// times slower than float32).
Precision resolve_precision(const std::string& requested, const std::string& device);

}  // namespace semat::models
