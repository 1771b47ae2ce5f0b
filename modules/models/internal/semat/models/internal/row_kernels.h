// Row kernels for the bf16 inference hot spots that LibTorch 1.13 runs slowly on CPU (its bf16
// kernels convert element by element, or we had to widen whole tensors to float32 and back):
// the global-attention scores' relative-position terms plus softmax (five passes over a
// [rows, N] block in LibTorch: widen bf16 to float32, two broadcast adds, softmax, narrow back)
// done in one pass per row whose float32 copy stays in L1; the windows' softmax; layer norm
// over the channels of each token; the exact (erf) GELU. Torch-free: plain pointers, so
// the file compiles without LibTorch's headers. Compiled for AVX-512 and for any x86-64, picked
// at run time (GCC target_clones).
#pragma once

#include <cstdint>

namespace semat::models::kernels {

/// bfloat16 values as their 16 stored bits (the upper half of a float32).
using bf16_bits = std::uint16_t;

/// For each row i < rows of a block of attention scores over an H x W key grid (N = H * W):
///   p[i, j] = softmax_j(s[i, j] + rel_h[i, j / W] + rel_w[i, j % W]),
/// with float32 arithmetic throughout (max subtracted before the exponential). `s` and `p`:
/// rows x N, row-major, leading dimension N (they may be the same buffer); `rel_h`: rows x H,
/// `rel_w`: rows x W, row-major float32. The bf16 form rounds p to nearest even once; its
/// exponential is a degree-6 polynomial after range reduction (relative error < 2e-7, far below
/// bf16's 2^-9), so its result equals LibTorch's widen / add / softmax / narrow sequence up to
/// an occasional last-bit rounding difference.
void bias_softmax_rows(const bf16_bits* s, const float* rel_h, const float* rel_w, std::int64_t rows,
                       std::int64_t H, std::int64_t W, bf16_bits* p);
void bias_softmax_rows(const float* s, const float* rel_h, const float* rel_w, std::int64_t rows, std::int64_t H,
                       std::int64_t W, float* p);

/// p[i, :] = softmax(s[i, :]) for rows x N row-major scores (in place allowed), float32 inside,
/// rounded to bf16 once.
void softmax_rows(const bf16_bits* s, std::int64_t rows, std::int64_t N, bf16_bits* p);

/// y[i, :] = (x[i, :] - mean_i) / sqrt(var_i + eps) * weight + bias over the C channels of each of
/// `rows` rows (biased variance, as torch.nn.LayerNorm), statistics and arithmetic in float32,
/// rounded to bf16 once. x, y: rows x C row-major (in place allowed); weight, bias: C floats.
void layer_norm_rows(const bf16_bits* x, std::int64_t rows, std::int64_t C, const float* weight, const float* bias,
                     float eps, bf16_bits* y);

/// y = x / 2 * (1 + erf(x / sqrt 2)) elementwise over n values (in place allowed), in float32
/// with erf to 1.5e-7 absolute (Abramowitz & Stegun 7.1.26), rounded to bf16 once.
void gelu(const bf16_bits* x, std::int64_t n, bf16_bits* y);

}  // namespace semat::models::kernels
