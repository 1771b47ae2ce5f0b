// The row kernels against a double-precision reference of the same formula.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "semat/models/internal/row_kernels.h"

namespace {

using semat::models::kernels::bf16_bits;
using semat::models::kernels::bias_softmax_rows;
namespace kernels = semat::models::kernels;

float from_bf16(bf16_bits b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

bf16_bits to_bf16(float f) {  // round to nearest even
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return static_cast<bf16_bits>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

struct Case {
  int rows, H, W;
  float spread;  // standard deviation of the scores: 40 puts most of each row below e^-87
};

// softmax_j(s[i, j] + rh[i, j / W] + rw[i, j % W]) in double.
std::vector<double> reference(const std::vector<float>& s, const std::vector<float>& rh, const std::vector<float>& rw,
                              const Case& c) {
  const int N = c.H * c.W;
  std::vector<double> p(s.size());
  for (int i = 0; i < c.rows; ++i) {
    double m = -INFINITY, sum = 0;
    for (int j = 0; j < N; ++j) {
      p[i * N + j] = double(s[i * N + j]) + rh[i * c.H + j / c.W] + rw[i * c.W + j % c.W];
      m = std::max(m, p[i * N + j]);
    }
    for (int j = 0; j < N; ++j) sum += (p[i * N + j] = std::exp(p[i * N + j] - m));
    for (int j = 0; j < N; ++j) p[i * N + j] /= sum;
  }
  return p;
}

class BiasSoftmaxRows : public ::testing::TestWithParam<Case> {};

TEST_P(BiasSoftmaxRows, Float32MatchesDoubleReference) {
  const Case c = GetParam();
  const int N = c.H * c.W;
  std::mt19937 gen(7);
  std::normal_distribution<float> d(0, c.spread);
  std::vector<float> s(c.rows * N), rh(c.rows * c.H), rw(c.rows * c.W), p(s.size());
  for (auto* v : {&s, &rh, &rw})
    for (float& x : *v) x = d(gen);
  const auto ref = reference(s, rh, rw, c);
  bias_softmax_rows(s.data(), rh.data(), rw.data(), c.rows, c.H, c.W, p.data());
  double worst = 0;
  for (size_t j = 0; j < p.size(); ++j) worst = std::max(worst, std::abs(p[j] - ref[j]));
  EXPECT_LT(worst, 2e-6) << "largest |p - p_double|";
  // In place (the encoder overwrites its scores with the probabilities).
  std::vector<float> inplace = s;
  bias_softmax_rows(inplace.data(), rh.data(), rw.data(), c.rows, c.H, c.W, inplace.data());
  EXPECT_EQ(inplace, p);
}

TEST_P(BiasSoftmaxRows, Bf16IsTheReferenceRoundedOnce) {
  const Case c = GetParam();
  const int N = c.H * c.W;
  std::mt19937 gen(11);
  std::normal_distribution<float> d(0, c.spread);
  std::vector<float> s(c.rows * N), rh(c.rows * c.H), rw(c.rows * c.W);
  std::vector<bf16_bits> sb(s.size()), pb(s.size());
  for (size_t j = 0; j < s.size(); ++j) s[j] = from_bf16(sb[j] = to_bf16(d(gen)));  // exact bf16 scores
  for (auto* v : {&rh, &rw})
    for (float& x : *v) x = d(gen);
  const auto ref = reference(s, rh, rw, c);
  bias_softmax_rows(sb.data(), rh.data(), rw.data(), c.rows, c.H, c.W, pb.data());
  int off_by_more = 0;
  for (size_t j = 0; j < pb.size(); ++j) {
    const double got = from_bf16(pb[j]);
    // One rounding to bf16 is at most half a unit in the last place (2^-9 relative); allow the
    // float32 arithmetic before it to tip a tie: a full unit. (Below e^-87 of the row's largest
    // term the kernel gives 0: an absolute 2e-38.)
    if (std::abs(got - ref[j]) > std::ldexp(std::abs(ref[j]), -8) + 2e-38) ++off_by_more;
  }
  EXPECT_EQ(off_by_more, 0) << "probabilities further than one bf16 unit from the exact value";
  std::vector<bf16_bits> inplace = sb;
  bias_softmax_rows(inplace.data(), rh.data(), rw.data(), c.rows, c.H, c.W, inplace.data());
  EXPECT_EQ(inplace, pb);
}

// ViT-B's global grid (64 x 64), a rectangle with a width that is no multiple of the vector
// size, one row, and scores spread so far that most exponentials underflow the clamp.
INSTANTIATE_TEST_SUITE_P(Shapes, BiasSoftmaxRows,
                         ::testing::Values(Case{8, 64, 64, 3.0f}, Case{5, 7, 13, 2.0f}, Case{1, 3, 1, 1.0f},
                                           Case{4, 16, 16, 40.0f}));

// One bf16 rounding of the exact value allows half a unit (2^-9 relative); the float32 arithmetic
// before it may tip a tie: a full unit, plus `floor` absolute for values near zero.
int beyond_one_unit(const std::vector<bf16_bits>& got, const std::vector<double>& ref, double floor) {
  int n = 0;
  for (size_t j = 0; j < got.size(); ++j)
    if (std::abs(from_bf16(got[j]) - ref[j]) > std::ldexp(std::abs(ref[j]), -8) + floor) ++n;
  return n;
}

std::vector<bf16_bits> random_bf16(size_t n, float sd, unsigned seed, std::vector<float>* as_float) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0, sd);
  std::vector<bf16_bits> b(n);
  as_float->resize(n);
  for (size_t j = 0; j < n; ++j) (*as_float)[j] = from_bf16(b[j] = to_bf16(d(gen)));
  return b;
}

TEST(RowKernels, SoftmaxRowsIsTheReferenceRoundedOnce) {
  for (const auto& [rows, n] : std::vector<std::pair<int, int>>{{196, 196}, {3, 17}, {1, 1}}) {
    std::vector<float> s;
    const auto sb = random_bf16(size_t(rows) * n, 4.0f, 3, &s);
    const Case c{rows, 1, n, 0};  // no position terms
    const std::vector<float> zeros_h(rows, 0.0f), zeros_w(size_t(rows) * n, 0.0f);
    const auto ref = reference(s, zeros_h, zeros_w, c);
    std::vector<bf16_bits> p(sb.size());
    kernels::softmax_rows(sb.data(), rows, n, p.data());
    EXPECT_EQ(beyond_one_unit(p, ref, 2e-38), 0) << rows << " x " << n;
    auto inplace = sb;
    kernels::softmax_rows(inplace.data(), rows, n, inplace.data());
    EXPECT_EQ(inplace, p);
  }
}

TEST(RowKernels, LayerNormRowsIsTheReferenceRoundedOnce) {
  const int rows = 37, C = 768;
  std::vector<float> x, w(C), b(C);
  auto xb = random_bf16(size_t(rows) * C, 2.0f, 5, &x);
  for (int i = 0; i < rows; ++i)  // rows far from zero mean: the variance must not cancel
    for (int c = 0; c < C; ++c) x[i * C + c] = from_bf16(xb[i * C + c] = to_bf16(x[i * C + c] + 10.0f * i));
  std::mt19937 gen(9);
  std::normal_distribution<float> d(0, 1);
  for (int c = 0; c < C; ++c) w[c] = d(gen), b[c] = d(gen);
  std::vector<double> ref(x.size());
  for (int i = 0; i < rows; ++i) {
    double mean = 0, var = 0;
    for (int c = 0; c < C; ++c) mean += x[i * C + c];
    mean /= C;
    for (int c = 0; c < C; ++c) var += (x[i * C + c] - mean) * (x[i * C + c] - mean);
    const double rstd = 1 / std::sqrt(var / C + 1e-6);
    for (int c = 0; c < C; ++c) ref[i * C + c] = (x[i * C + c] - mean) * rstd * w[c] + b[c];
  }
  std::vector<bf16_bits> y(xb.size());
  kernels::layer_norm_rows(xb.data(), rows, C, w.data(), b.data(), 1e-6f, y.data());
  // float32 statistics of rows with means up to 360: about 1e-4 absolute where the output is ~0.
  EXPECT_EQ(beyond_one_unit(y, ref, 2e-4), 0);
  kernels::layer_norm_rows(xb.data(), rows, C, w.data(), b.data(), 1e-6f, xb.data());
  EXPECT_EQ(xb, y) << "in place";
}

TEST(RowKernels, GeluIsTheExactErfFormRoundedOnce) {
  std::vector<float> x;
  auto xb = random_bf16(100003, 3.0f, 13, &x);  // odd length: the vector loop's tail too
  std::vector<double> ref(x.size());
  for (size_t j = 0; j < x.size(); ++j) ref[j] = 0.5 * x[j] * (1 + std::erf(x[j] / std::sqrt(2.0)));
  std::vector<bf16_bits> y(xb.size());
  kernels::gelu(xb.data(), static_cast<std::int64_t>(xb.size()), y.data());
  // erf to 1.5e-7 absolute: for large negative x, where GELU is ~0, that is what remains.
  EXPECT_EQ(beyond_one_unit(y, ref, 1e-6), 0);
  kernels::gelu(xb.data(), static_cast<std::int64_t>(xb.size()), xb.data());
  EXPECT_EQ(xb, y) << "in place";
}

}  // namespace
