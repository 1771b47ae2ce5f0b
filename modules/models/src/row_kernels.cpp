#include "semat/models/internal/row_kernels.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

// Each public kernel is compiled twice (AVX-512 and baseline x86-64) and the loader picks one by
// the CPU (an ifunc): the loops below are written so that GCC vectorises them (`omp simd`
// reductions need -fopenmp-simd, set for this file in CMakeLists.txt), and no intrinsics are used.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SEMAT_ROW_KERNEL __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define SEMAT_ROW_KERNEL
#endif

namespace semat::models::kernels {
namespace {

inline float widen(float v) { return v; }
inline float widen(bf16_bits v) {
  const std::uint32_t u = static_cast<std::uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline void narrow(float v, float* out) { *out = v; }
inline void narrow(float v, bf16_bits* out) {  // round to nearest even (v is finite here)
  std::uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  *out = static_cast<bf16_bits>(u >> 16);
}

// e^x for x <= 0: x = n ln2 + f with |f| <= ln2 / 2 (n the nearest integer to x / ln2) (ln2 split in two for an exact n ln2), e^f by
// its Taylor polynomial to degree 6 (truncation < 1.2e-7 relative), 2^n put into the exponent
// bits. Inputs below -87 give 0 (e^-87 ~ 1.6e-38 is the last normal float's neighbourhood; a
// score 87 below its row's maximum has no share of the sum either way).
inline float exp_nonpositive(float x_in) {
  const float x = x_in > -87.0f ? x_in : -87.0f;
  // Round to nearest by adding and removing 1.5 * 2^23 (exact for |t| < 2^22): no call to floor,
  // so the loop vectorises on every target.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float f = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 720;
  p = p * f + 1.0f / 120;
  p = p * f + 1.0f / 24;
  p = p * f + 1.0f / 6;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  const std::uint32_t bits = static_cast<std::uint32_t>(static_cast<std::int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x_in > -87.0f ? p * scale : 0.0f;
}

// Softmax of one row of n float32 values in x, written to out.
template <class T>
inline void softmax_row(float* x, std::int64_t n, float m, T* out) {
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j) x[j] = exp_nonpositive(x[j] - m);
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t j = 0; j < n; ++j) sum += x[j];
  const float inv = 1.0f / sum;
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j) narrow(x[j] * inv, out + j);
}

template <class T>
inline void bias_softmax_impl(const T* s, const float* rel_h, const float* rel_w, std::int64_t rows, std::int64_t H,
                              std::int64_t W, T* p) {
  const std::int64_t N = H * W;
  std::vector<float> row(static_cast<size_t>(N));  // one row of float32 scores: 16 KB for 64 x 64
  float* x = row.data();
  for (std::int64_t i = 0; i < rows; ++i) {
    const T* si = s + i * N;
    const float* rh = rel_h + i * H;
    const float* rw = rel_w + i * W;
    float m = -std::numeric_limits<float>::infinity();
    for (std::int64_t kh = 0; kh < H; ++kh) {
      const float b = rh[kh];
      const T* sr = si + kh * W;
      float* xr = x + kh * W;
#pragma omp simd reduction(max : m)
      for (std::int64_t kw = 0; kw < W; ++kw) {
        const float v = widen(sr[kw]) + b + rw[kw];
        xr[kw] = v;
        m = v > m ? v : m;
      }
    }
    softmax_row(x, N, m, p + i * N);
  }
}

}  // namespace

SEMAT_ROW_KERNEL
void bias_softmax_rows(const bf16_bits* s, const float* rel_h, const float* rel_w, std::int64_t rows, std::int64_t H,
                       std::int64_t W, bf16_bits* p) {
  bias_softmax_impl(s, rel_h, rel_w, rows, H, W, p);
}

SEMAT_ROW_KERNEL
void bias_softmax_rows(const float* s, const float* rel_h, const float* rel_w, std::int64_t rows, std::int64_t H,
                       std::int64_t W, float* p) {
  bias_softmax_impl(s, rel_h, rel_w, rows, H, W, p);
}

SEMAT_ROW_KERNEL
void softmax_rows(const bf16_bits* s, std::int64_t rows, std::int64_t N, bf16_bits* p) {
  std::vector<float> row(static_cast<size_t>(N));
  float* x = row.data();
  for (std::int64_t i = 0; i < rows; ++i) {
    const bf16_bits* si = s + i * N;
    float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
    for (std::int64_t j = 0; j < N; ++j) {
      x[j] = widen(si[j]);
      m = x[j] > m ? x[j] : m;
    }
    softmax_row(x, N, m, p + i * N);
  }
}

SEMAT_ROW_KERNEL
void layer_norm_rows(const bf16_bits* x, std::int64_t rows, std::int64_t C, const float* weight, const float* bias,
                     float eps, bf16_bits* y) {
  std::vector<float> row(static_cast<size_t>(C));
  float* v = row.data();
  for (std::int64_t i = 0; i < rows; ++i) {
    const bf16_bits* xi = x + i * C;
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::int64_t c = 0; c < C; ++c) {
      v[c] = widen(xi[c]);
      sum += v[c];
    }
    const float mean = sum / static_cast<float>(C);
    float ss = 0;  // two passes: the variance of centred values, no cancellation
#pragma omp simd reduction(+ : ss)
    for (std::int64_t c = 0; c < C; ++c) {
      v[c] -= mean;
      ss += v[c] * v[c];
    }
    const float rstd = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    bf16_bits* yi = y + i * C;
#pragma omp simd
    for (std::int64_t c = 0; c < C; ++c) narrow(v[c] * rstd * weight[c] + bias[c], yi + c);
  }
}

SEMAT_ROW_KERNEL
void gelu(const bf16_bits* x, std::int64_t n, bf16_bits* y) {
  // erf(z) = 1 - (a1 t + ... + a5 t^5) e^(-z^2), t = 1 / (1 + p z) for z >= 0; odd in z.
  constexpr float p = 0.3275911f, a1 = 0.254829592f, a2 = -0.284496736f, a3 = 1.421413741f, a4 = -1.453152027f,
                  a5 = 1.061405429f;
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j) {
    const float v = widen(x[j]);
    const float z = (v < 0 ? -v : v) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + p * z);
    const float poly = t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))));
    const float erf_abs = 1.0f - poly * exp_nonpositive(-z * z);
    narrow(0.5f * v * (1.0f + (v < 0 ? -erf_abs : erf_abs)), y + j);
  }
}

}  // namespace semat::models::kernels
