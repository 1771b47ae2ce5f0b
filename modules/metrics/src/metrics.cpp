#include "semat/metrics/metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"

namespace semat::metrics {
namespace {

constexpr double kSigma = 1.4;
constexpr int kHalf = 4;  // ceil(sigma * sqrt(-2 ln(sqrt(2 pi) sigma 1e-2))) for sigma 1.4
constexpr int kTaps = 2 * kHalf + 1;
constexpr int kSteps = 10;
constexpr double kTheta = 0.15;

void check_pair(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& region, const char* what) {
  SEMAT_CHECK(pred.type() == CV_64FC1 && gt.type() == CV_64FC1, InvalidArgument,
              what << ": prediction and ground truth must be CV_64FC1 alphas in [0, 1]");
  SEMAT_CHECK(!pred.empty() && pred.size() == gt.size(), InvalidArgument,
              what << ": prediction " << pred.cols << "x" << pred.rows << " and ground truth "
                   << gt.cols << "x" << gt.rows << " must be non-empty and the same size");
  SEMAT_CHECK(region.empty() || (region.type() == CV_8UC1 && region.size() == pred.size()),
              InvalidArgument, what << ": the region must be empty or a CV_8UC1 mask of the alpha's size");
}

// Sum over the region of f(P, G), rows at a time so an empty region costs no mask.
template <typename F>
double region_sum(const cv::Mat& a, const cv::Mat& b, const cv::Mat& region, F f) {
  double total = 0.0;
  for (int y = 0; y < a.rows; ++y) {
    const double* pa = a.ptr<double>(y);
    const double* pb = b.ptr<double>(y);
    double row = 0.0;
    if (region.empty()) {
      for (int x = 0; x < a.cols; ++x) row += f(pa[x], pb[x]);
    } else {
      const std::uint8_t* m = region.ptr<std::uint8_t>(y);
      for (int x = 0; x < a.cols; ++x)
        if (m[x]) row += f(pa[x], pb[x]);
    }
    total += row;
  }
  return total;
}

double gauss(double x) { return std::exp(-x * x / (2 * kSigma * kSigma)) / (kSigma * std::sqrt(2 * M_PI)); }
double dgauss(double x) { return -x * gauss(x) / (kSigma * kSigma); }

// The 1-D factors of H_x = g (down the rows) x g' (along the columns), each normalised so that
// their outer product has unit Frobenius norm, like the reference's normalised 9x9 kernel.
struct Factors {
  std::array<double, kTaps> g, dg;
};
const Factors& factors() {
  static const Factors f = [] {
    Factors r;
    double ng = 0, nd = 0;
    for (int i = 0; i < kTaps; ++i) {
      r.g[i] = gauss(i - kHalf);
      r.dg[i] = dgauss(i - kHalf);
      ng += r.g[i] * r.g[i];
      nd += r.dg[i] * r.dg[i];
    }
    for (int i = 0; i < kTaps; ++i) {
      r.g[i] /= std::sqrt(ng);
      r.dg[i] /= std::sqrt(nd);
    }
    return r;
  }();
  return f;
}

// Gradients of one image a row at a time, so a whole-image evaluation never allocates full-size
// temporaries (at 1024 x 1024 these dominated the time through page faults and cache misses).
// H_x = g (down the rows) x g' (along the columns) is separable: a column pass with g then a row
// pass with g' gives Gx, a column pass with g' then a row pass with g gives Gy; H_y = H_x^T.
class RowGradient {
 public:
  explicit RowGradient(const cv::Mat& x)
      : x_(x), w_(x.cols), col_g_(w_), col_dg_(w_), pad_(w_ + 2 * kHalf), gx_(w_), gy_(w_) {}

  // Fills gx() and gy() for row y.
  void compute(int y) {
    const Factors& f = factors();
    const int h = x_.rows;
    auto row = [&](int r) { return x_.ptr<double>(std::clamp(r, 0, h - 1)); };
    // True convolution down the rows: out[y] = sum_i k[h + i] in[y - i]. g is symmetric and g'
    // antisymmetric (g'[h] = 0), so the taps pair up around the centre.
    const double* c = row(y);
    for (int x = 0; x < w_; ++x) {
      col_g_[x] = f.g[kHalf] * c[x];
      col_dg_[x] = 0.0;
    }
    for (int i = 1; i <= kHalf; ++i) {
      const double* up = row(y - i);
      const double* dn = row(y + i);
      const double kg = f.g[kHalf + i], kd = f.dg[kHalf + i];
      for (int x = 0; x < w_; ++x) {
        col_g_[x] += kg * (up[x] + dn[x]);
        col_dg_[x] += kd * (up[x] - dn[x]);
      }
    }
    conv_row(col_g_.data(), f.dg, -1.0, gx_.data());
    conv_row(col_dg_.data(), f.g, 1.0, gy_.data());
  }
  const double* gx() const { return gx_.data(); }
  const double* gy() const { return gy_.data(); }

 private:
  // Along the row, replicated borders: out[x] = k[h] in[x] + sum_{i>0} k[h+i] (in[x-i] + s in[x+i]),
  // where k[h - i] = s k[h + i].
  void conv_row(const double* in, const std::array<double, kTaps>& k, double s, double* out) {
    for (int i = 0; i < kHalf; ++i) {
      pad_[i] = in[0];
      pad_[kHalf + w_ + i] = in[w_ - 1];
    }
    std::copy(in, in + w_, pad_.begin() + kHalf);
    const double* p = pad_.data() + kHalf;
    const double k0 = k[kHalf], k1 = k[kHalf + 1], k2 = k[kHalf + 2], k3 = k[kHalf + 3], k4 = k[kHalf + 4];
    for (int x = 0; x < w_; ++x)
      out[x] = k0 * p[x] + k1 * (p[x - 1] + s * p[x + 1]) + k2 * (p[x - 2] + s * p[x + 2]) +
               k3 * (p[x - 3] + s * p[x + 3]) + k4 * (p[x - 4] + s * p[x + 4]);
  }

  const cv::Mat& x_;
  int w_;
  std::vector<double> col_g_, col_dg_, pad_, gx_, gy_;
};

// MATLAB mat2gray: (x - min) / (max - min). A constant map has no gradient whatever its scale,
// so it is left as it is instead of dividing by zero.
cv::Mat mat2gray(const cv::Mat& x) {
  double lo = 0, hi = 0;
  cv::minMaxLoc(x, &lo, &hi);
  if (!(hi > lo)) return x;
  cv::Mat out;
  x.convertTo(out, CV_64F, 1.0 / (hi - lo), -lo / (hi - lo));
  return out;
}

// ---- Connectivity -------------------------------------------------------------------------------

// t_k = k * 0.1 in double, as np.arange(0, 1.1, 0.1) makes them (t_6 = 0.6000000000000001, so
// alpha 153/255 = 0.6 is *below* t_6).
const std::array<double, kSteps + 1>& thresholds() {
  static const std::array<double, kSteps + 1> t = [] {
    std::array<double, kSteps + 1> r{};
    for (int k = 0; k <= kSteps; ++k) r[k] = k * 0.1;
    return r;
  }();
  return t;
}

// Largest k in 0..10 with x >= t_k.
inline int level_of(double x, const std::array<double, kSteps + 1>& t) {
  int k = static_cast<int>(x * 10.0);
  k = std::clamp(k, 0, kSteps);
  while (k < kSteps && x >= t[k + 1]) ++k;
  while (k > 0 && x < t[k]) --k;
  return k;
}

struct Run {
  int x0, x1, y;  // [x0, x1) on row y
};

int find_root(std::vector<int>& parent, int i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

// Root = smallest run index, i.e. the component's first pixel in raster order; that is also the
// order of skimage's labels, so "lowest label" ties become "smallest root".
void unite(std::vector<int>& parent, int a, int b) {
  a = find_root(parent, a);
  b = find_root(parent, b);
  if (a < b) parent[b] = a;
  else if (b < a) parent[a] = b;
}

// Assigns `step` to the still-unset pixels in [x0, x1) of one row.
inline void assign(std::uint8_t* a, int x0, int x1, std::uint8_t step) {
  for (int x = x0; x < x1; ++x) a[x] = a[x] ? a[x] : step;
}

// Step index map: 0 = never left Omega_k (l = 1), k = first left at step k (l = t_{k-1}).
cv::Mat connectivity_steps(const cv::Mat& pred, const cv::Mat& gt, ConnRule rule) {
  const auto& t = thresholds();
  const int h = pred.rows, w = pred.cols;
  cv::Mat level(pred.size(), CV_8UC1);
  for (int y = 0; y < h; ++y) {
    const double* p = pred.ptr<double>(y);
    const double* g = gt.ptr<double>(y);
    std::uint8_t* l = level.ptr<std::uint8_t>(y);
    for (int x = 0; x < w; ++x) l[x] = static_cast<std::uint8_t>(std::min(level_of(p[x], t), level_of(g[x], t)));
  }

  cv::Mat steps(pred.size(), CV_8UC1, cv::Scalar(0));
  const std::int64_t total = static_cast<std::int64_t>(h) * w;
  std::vector<Run> runs;
  std::vector<int> row_start(h + 1), parent;
  std::vector<std::int64_t> size, colmajor_key;
  for (int k = 1; k <= kSteps; ++k) {
    // B_k = level >= k as runs per row, joined to overlapping runs of the row above (4-connected).
    runs.clear();
    for (int y = 0; y < h; ++y) {
      row_start[y] = static_cast<int>(runs.size());
      const std::uint8_t* l = level.ptr<std::uint8_t>(y);
      for (int x = 0; x < w;) {
        if (l[x] < k) {
          ++x;
          continue;
        }
        const int x0 = x;
        while (x < w && l[x] >= k) ++x;
        runs.push_back({x0, x, y});
      }
    }
    row_start[h] = static_cast<int>(runs.size());
    const int n = static_cast<int>(runs.size());
    parent.resize(n);
    for (int i = 0; i < n; ++i) parent[i] = i;
    for (int y = 1; y < h; ++y) {
      int a = row_start[y - 1];
      const int a_end = row_start[y];
      for (int b = row_start[y]; b < row_start[y + 1]; ++b) {
        while (a < a_end && runs[a].x1 <= runs[b].x0) ++a;
        for (int j = a; j < a_end && runs[j].x0 < runs[b].x1; ++j) unite(parent, j, b);
      }
    }
    size.assign(n, 0);
    colmajor_key.assign(n, std::numeric_limits<std::int64_t>::max());
    std::int64_t in_b = 0;
    for (int i = 0; i < n; ++i) {
      const int r = find_root(parent, i);
      parent[i] = r;
      size[r] += runs[i].x1 - runs[i].x0;
      in_b += runs[i].x1 - runs[i].x0;
      colmajor_key[r] = std::min(colmajor_key[r], static_cast<std::int64_t>(runs[i].x0) * h + runs[i].y);
    }
    int best = -1;  // root of the largest foreground component
    for (int i = 0; i < n; ++i) {
      if (parent[i] != i) continue;
      if (best < 0 || size[i] > size[best]) {
        best = i;
      } else if (size[i] == size[best] && rule == ConnRule::kLargestForeground &&
                 colmajor_key[i] < colmajor_key[best]) {
        best = i;  // bwconncomp numbers components in column-major order
      }
    }

    const auto step = static_cast<std::uint8_t>(k);
    if (best < 0) {
      // B_k is empty. SEMat: the background is the only label and becomes Omega, so nothing is
      // outside it; DIM (IndexNet's guard): the step is skipped; InstMatt: Omega is empty.
      if (rule == ConnRule::kLargestForegroundEmptyIsNone) {
        for (int y = 0; y < h; ++y) assign(steps.ptr<std::uint8_t>(y), 0, w, step);
      }
      continue;
    }
    if (rule == ConnRule::kLargestWithBackground && total - in_b >= size[best]) {
      // Omega is the background (ties go to label 0), so the unset pixels of B_k leave it.
      for (const Run& r : runs) assign(steps.ptr<std::uint8_t>(r.y), r.x0, r.x1, step);
      continue;
    }
    // Omega is component `best`: every unset pixel outside it leaves.
    for (int y = 0; y < h; ++y) {
      std::uint8_t* a = steps.ptr<std::uint8_t>(y);
      int x = 0;
      for (int i = row_start[y]; i < row_start[y + 1]; ++i) {
        if (parent[i] == best) {
          assign(a, x, runs[i].x0, step);
          x = runs[i].x1;
        }
      }
      assign(a, x, w, step);
    }
  }
  return steps;
}

// l values per step index. SEMat and InstMatt hold l in float32, DIM MATLAB in double.
std::array<double, kSteps + 1> level_values(ConnRule rule) {
  const auto& t = thresholds();
  std::array<double, kSteps + 1> v{};
  v[0] = 1.0;
  for (int k = 1; k <= kSteps; ++k)
    v[k] = rule == ConnRule::kLargestForeground ? t[k - 1] : static_cast<double>(static_cast<float>(t[k - 1]));
  return v;
}

}  // namespace

std::int64_t region_size(const cv::Mat& pred, const cv::Mat& region) {
  if (region.empty()) return static_cast<std::int64_t>(pred.rows) * pred.cols;
  return cv::countNonZero(region);
}

double sum_abs_error(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& region) {
  check_pair(pred, gt, region, "SAD");
  return region_sum(pred, gt, region, [](double p, double g) { return std::abs(p - g); });
}

double sum_squared_error(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& region) {
  check_pair(pred, gt, region, "MSE");
  return region_sum(pred, gt, region, [](double p, double g) { return (p - g) * (p - g); });
}

cv::Mat gradient_kernel_x() {
  const Factors& f = factors();
  cv::Mat k(kTaps, kTaps, CV_64FC1);
  for (int i = 0; i < kTaps; ++i)
    for (int j = 0; j < kTaps; ++j) k.at<double>(i, j) = f.g[i] * f.dg[j];
  return k;
}

void gaussian_gradient(const cv::Mat& x, cv::Mat& gx, cv::Mat& gy) {
  SEMAT_CHECK(x.type() == CV_64FC1 && !x.empty(), InvalidArgument,
              "gaussian_gradient: a non-empty CV_64FC1 image is expected");
  gx.create(x.size(), CV_64FC1);
  gy.create(x.size(), CV_64FC1);
  RowGradient rg(x);
  for (int y = 0; y < x.rows; ++y) {
    rg.compute(y);
    std::copy(rg.gx(), rg.gx() + x.cols, gx.ptr<double>(y));
    std::copy(rg.gy(), rg.gy() + x.cols, gy.ptr<double>(y));
  }
}

double sum_gradient_error(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& region, bool minmax) {
  check_pair(pred, gt, region, "Grad");
  const cv::Mat p = minmax ? mat2gray(pred) : pred;
  const cv::Mat g = minmax ? mat2gray(gt) : gt;
  RowGradient rp(p), rg(g);
  double total = 0.0;
  for (int y = 0; y < p.rows; ++y) {
    rp.compute(y);
    rg.compute(y);
    const double *px = rp.gx(), *py = rp.gy(), *gx = rg.gx(), *gy = rg.gy();
    const std::uint8_t* m = region.empty() ? nullptr : region.ptr<std::uint8_t>(y);
    double row = 0.0;
    for (int x = 0; x < p.cols; ++x) {
      const double d = std::sqrt(px[x] * px[x] + py[x] * py[x]) - std::sqrt(gx[x] * gx[x] + gy[x] * gy[x]);
      row += (m && !m[x]) ? 0.0 : d * d;
    }
    total += row;
  }
  return total;
}

cv::Mat connectivity_levels(const cv::Mat& pred, const cv::Mat& gt, ConnRule rule) {
  check_pair(pred, gt, cv::Mat(), "Conn");
  const cv::Mat steps = connectivity_steps(pred, gt, rule);
  const auto values = level_values(rule);
  cv::Mat l(pred.size(), CV_64FC1);
  for (int y = 0; y < l.rows; ++y) {
    const std::uint8_t* s = steps.ptr<std::uint8_t>(y);
    double* o = l.ptr<double>(y);
    for (int x = 0; x < l.cols; ++x) o[x] = values[s[x]];
  }
  return l;
}

double sum_connectivity_error(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& region,
                              ConnRule rule) {
  check_pair(pred, gt, region, "Conn");
  const cv::Mat steps = connectivity_steps(pred, gt, rule);
  const auto values = level_values(rule);
  double total = 0.0;
  for (int y = 0; y < pred.rows; ++y) {
    const double* p = pred.ptr<double>(y);
    const double* g = gt.ptr<double>(y);
    const std::uint8_t* s = steps.ptr<std::uint8_t>(y);
    const std::uint8_t* m = region.empty() ? nullptr : region.ptr<std::uint8_t>(y);
    double row = 0.0;
    for (int x = 0; x < pred.cols; ++x) {
      if (m && !m[x]) continue;
      const double l = values[s[x]];
      const double dp = p[x] - l, dg = g[x] - l;
      const double phi_p = dp >= kTheta ? 1.0 - dp : 1.0;
      const double phi_g = dg >= kTheta ? 1.0 - dg : 1.0;
      row += std::abs(phi_p - phi_g);
    }
    total += row;
  }
  return total;
}

}  // namespace semat::metrics
