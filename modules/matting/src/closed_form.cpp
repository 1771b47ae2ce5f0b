#include "semat/matting/closed_form.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/core/timer.h"
#include "semat/matting/trimap.h"

namespace semat::matting {
namespace {

// One level of the problem, cropped to the unknown region plus the 2-pixel margin its windows
// can reach. Windows are 3x3, identified by their centre; only windows holding an unknown pixel
// are kept (rows of known pixels are never evaluated).
struct Level {
  int h = 0, w = 0;
  std::vector<double> color;     // 3 per pixel, [0, 1]
  std::vector<double> known;     // alpha on known pixels, 0 on unknown ones
  std::vector<double> prior;     // per unknown pixel (empty without a prior)
  double prior_weight = 0;
  std::vector<int> unknown;      // pixel indices of the unknowns
  std::vector<int> window_at;    // per pixel: window id centred there, or -1
  std::vector<int> window_centre;
  std::vector<double> mu;        // 3 per window
  std::vector<double> inv_cov;   // 6 per window: symmetric (cov + eps/9 I)^-1, upper triangle
};

constexpr double kWindowArea = 9.0;

void build_windows(Level& L, double epsilon) {
  std::vector<unsigned char> near(static_cast<size_t>(L.h) * L.w, 0);
  for (int p : L.unknown) {
    const int y = p / L.w, x = p % L.w;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int cy = y + dy, cx = x + dx;
        if (cy >= 1 && cy < L.h - 1 && cx >= 1 && cx < L.w - 1) near[cy * L.w + cx] = 1;
      }
  }
  L.window_at.assign(near.size(), -1);
  L.window_centre.clear();
  for (int p = 0; p < static_cast<int>(near.size()); ++p)
    if (near[p]) {
      L.window_at[p] = static_cast<int>(L.window_centre.size());
      L.window_centre.push_back(p);
    }
  const int nw = static_cast<int>(L.window_centre.size());
  L.mu.assign(3 * static_cast<size_t>(nw), 0.0);
  L.inv_cov.assign(6 * static_cast<size_t>(nw), 0.0);
  cv::parallel_for_(cv::Range(0, nw), [&](const cv::Range& range) {
    for (int k = range.start; k < range.end; ++k) {
      const int c = L.window_centre[k];
      double m[3] = {0, 0, 0}, s[6] = {0, 0, 0, 0, 0, 0};
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const double* I = &L.color[3 * static_cast<size_t>(c + dy * L.w + dx)];
          m[0] += I[0], m[1] += I[1], m[2] += I[2];
          s[0] += I[0] * I[0], s[1] += I[0] * I[1], s[2] += I[0] * I[2];
          s[3] += I[1] * I[1], s[4] += I[1] * I[2], s[5] += I[2] * I[2];
        }
      for (double& v : m) v /= kWindowArea;
      const double reg = epsilon / kWindowArea;
      const double a = s[0] / kWindowArea - m[0] * m[0] + reg;
      const double b = s[1] / kWindowArea - m[0] * m[1];
      const double cc = s[2] / kWindowArea - m[0] * m[2];
      const double d = s[3] / kWindowArea - m[1] * m[1] + reg;
      const double e = s[4] / kWindowArea - m[1] * m[2];
      const double f = s[5] / kWindowArea - m[2] * m[2] + reg;
      // Inverse of the symmetric 3x3 [[a b c] [b d e] [c e f]] by cofactors.
      const double A = d * f - e * e, B = cc * e - b * f, C = b * e - cc * d;
      const double det = a * A + b * B + cc * C;
      const double inv = 1.0 / det;
      double* out = &L.inv_cov[6 * static_cast<size_t>(k)];
      out[0] = A * inv;
      out[1] = B * inv;
      out[2] = C * inv;
      out[3] = (a * f - cc * cc) * inv;
      out[4] = (b * cc - a * e) * inv;
      out[5] = (a * d - b * b) * inv;
      std::copy(m, m + 3, &L.mu[3 * static_cast<size_t>(k)]);
    }
  });
}

// Calls fn(k, e) for each window k holding pixel p, with e = I_p - mu_k (3 doubles): the two
// per-pixel sums below (operator rows and the Jacobi diagonal) visit windows the same way.
template <typename Fn>
inline void for_each_window_of(const Level& L, int p, Fn&& fn) {
  const int py = p / L.w, px = p % L.w;
  const double* I = &L.color[3 * static_cast<size_t>(p)];
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
      const int cy = py + dy, cx = px + dx;
      if (cy < 0 || cy >= L.h || cx < 0 || cx >= L.w) continue;
      const int k = L.window_at[cy * L.w + cx];
      if (k < 0) continue;
      const double* mu = &L.mu[3 * static_cast<size_t>(k)];
      const double e[3] = {I[0] - mu[0], I[1] - mu[1], I[2] - mu[2]};
      fn(k, e);
    }
}

// y[j] = (L X)[unknown[j]] for a full-size vector X. Two passes so that both parallelise without
// write conflicts: per window the mean of X and A * (1/9) sum (I - mu) X; then per unknown pixel
// the sum over its windows of X_i - mean - (I_i - mu) . v.
class Operator {
 public:
  explicit Operator(const Level& L) : L_(L), sv_(4 * L.window_centre.size()) {}

  // With `with_prior`, adds lambda * X_i (the data term's share of the system matrix).
  void apply(const std::vector<double>& X, std::vector<double>& y, bool with_prior = true) {
    const double lambda = with_prior ? L_.prior_weight : 0.0;
    const Level& L = L_;
    const int nw = static_cast<int>(L.window_centre.size());
    cv::parallel_for_(cv::Range(0, nw), [&](const cv::Range& range) {
      for (int k = range.start; k < range.end; ++k) {
        const int c = L.window_centre[k];
        const double* mu = &L.mu[3 * static_cast<size_t>(k)];
        double sx = 0, t0 = 0, t1 = 0, t2 = 0;
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            const int p = c + dy * L.w + dx;
            const double xv = X[p];
            const double* I = &L.color[3 * static_cast<size_t>(p)];
            sx += xv;
            t0 += (I[0] - mu[0]) * xv, t1 += (I[1] - mu[1]) * xv, t2 += (I[2] - mu[2]) * xv;
          }
        const double* a = &L.inv_cov[6 * static_cast<size_t>(k)];
        double* o = &sv_[4 * static_cast<size_t>(k)];
        o[0] = sx / kWindowArea;
        t0 /= kWindowArea, t1 /= kWindowArea, t2 /= kWindowArea;
        o[1] = a[0] * t0 + a[1] * t1 + a[2] * t2;
        o[2] = a[1] * t0 + a[3] * t1 + a[4] * t2;
        o[3] = a[2] * t0 + a[4] * t1 + a[5] * t2;
      }
    });
    const int n = static_cast<int>(L.unknown.size());
    y.resize(n);
    cv::parallel_for_(cv::Range(0, n), [&](const cv::Range& range) {
      for (int j = range.start; j < range.end; ++j) {
        const int p = L.unknown[j];
        double acc = 0;
        for_each_window_of(L, p, [&](int k, const double* e) {
          const double* o = &sv_[4 * static_cast<size_t>(k)];
          acc += X[p] - o[0] - (e[0] * o[1] + e[1] * o[2] + e[2] * o[3]);
        });
        y[j] = acc + lambda * X[p];
      }
    });
  }

  std::vector<double> diagonal() const {
    const Level& L = L_;
    std::vector<double> d(L.unknown.size());
    for (size_t j = 0; j < L.unknown.size(); ++j) {
      double acc = 0;
      for_each_window_of(L, L.unknown[j], [&](int k, const double* e) {
        const double* a = &L.inv_cov[6 * static_cast<size_t>(k)];
        const double q = a[0] * e[0] * e[0] + a[3] * e[1] * e[1] + a[5] * e[2] * e[2] +
                         2 * (a[1] * e[0] * e[1] + a[2] * e[0] * e[2] + a[4] * e[1] * e[2]);
        acc += 1.0 - (1.0 + q) / kWindowArea;
      });
      d[j] = acc + L.prior_weight;
    }
    return d;
  }

 private:
  const Level& L_;
  std::vector<double> sv_;
};

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Jacobi-preconditioned CG on L_uu x = -L_uk alpha_k; `x` holds the initial guess.
void solve_level(Level& L, const ClosedFormParams& p, std::vector<double>& x, SolveStats& st) {
  build_windows(L, p.epsilon);
  Operator op(L);
  const size_t n = L.unknown.size();

  std::vector<double> b;
  op.apply(L.known, b, /*with_prior=*/false);
  for (double& v : b) v = -v;
  for (size_t j = 0; j < L.prior.size(); ++j) b[j] += L.prior_weight * L.prior[j];
  const double bnorm = std::sqrt(dot(b, b));

  std::vector<double> diag = op.diagonal();
  for (double& v : diag) v = v > 1e-12 ? 1.0 / v : 1.0;

  std::vector<double> X(static_cast<size_t>(L.h) * L.w, 0.0), Ax, r(n), z(n), q;
  auto scatter = [&](const std::vector<double>& v) {
    for (size_t j = 0; j < n; ++j) X[L.unknown[j]] = v[j];
  };
  scatter(x);
  op.apply(X, Ax);
  for (size_t j = 0; j < n; ++j) r[j] = b[j] - Ax[j];
  for (size_t j = 0; j < n; ++j) z[j] = diag[j] * r[j];
  std::vector<double> d = z;
  double rz = dot(r, z);
  int it = 0;
  double rnorm = std::sqrt(dot(r, r));
  const double target = p.tolerance * std::max(bnorm, 1e-30);
  while (rnorm > target && it < p.max_iterations) {
    scatter(d);
    op.apply(X, q);
    const double dq = dot(d, q);
    if (!(dq > 0)) break;  // numerically singular direction: keep the current iterate
    const double step = rz / dq;
    for (size_t j = 0; j < n; ++j) {
      x[j] += step * d[j];
      r[j] -= step * q[j];
      z[j] = diag[j] * r[j];
    }
    const double rz_new = dot(r, z);
    const double beta = rz_new / rz;
    rz = rz_new;
    for (size_t j = 0; j < n; ++j) d[j] = z[j] + beta * d[j];
    rnorm = std::sqrt(dot(r, r));
    ++it;
  }
  st.iterations = it;
  st.relative_residual = bnorm > 0 ? rnorm / bnorm : 0;
}

Level make_level(const cv::Mat& image, const cv::Mat& trimap, const cv::Mat& prior,
                 double prior_weight) {
  Level L;
  L.h = image.rows, L.w = image.cols;
  const size_t np = static_cast<size_t>(L.h) * L.w;
  L.color.resize(3 * np);
  L.known.assign(np, 0.0);
  for (int y = 0; y < L.h; ++y) {
    const cv::Vec3b* row = image.ptr<cv::Vec3b>(y);
    const unsigned char* t = trimap.ptr<unsigned char>(y);
    for (int x = 0; x < L.w; ++x) {
      const size_t p = static_cast<size_t>(y) * L.w + x;
      for (int c = 0; c < 3; ++c) L.color[3 * p + c] = row[x][c] / 255.0;
      if (t[x] == kForeground) L.known[p] = 1.0;
      else if (t[x] != kBackground) L.unknown.push_back(static_cast<int>(p));
    }
  }
  if (!prior.empty() && prior_weight > 0) {
    L.prior_weight = prior_weight;
    for (int p : L.unknown) L.prior.push_back(prior.ptr<float>()[p]);
  }
  return L;
}

// Half-resolution trimap: a coarse pixel is known only when all fine pixels under it agree.
cv::Mat downsample_trimap(const cv::Mat& trimap, cv::Size size) {
  cv::Mat fg, bg;
  cv::resize(trimap == kForeground, fg, size, 0, 0, cv::INTER_AREA);
  cv::resize(trimap == kBackground, bg, size, 0, 0, cv::INTER_AREA);
  cv::Mat out(size, CV_8U, cv::Scalar(kUnknown));
  out.setTo(kForeground, fg == 255);
  out.setTo(kBackground, bg == 255);
  return out;
}

// Solves on `image`/`trimap` (already cropped); returns alpha as CV_64F.
cv::Mat solve_pyramid(const cv::Mat& image, const cv::Mat& trimap, const cv::Mat& prior,
                      const ClosedFormParams& p, SolveStats& st, int depth) {
  Level L = make_level(image, trimap, prior, p.prior_weight);
  std::vector<double> x(L.unknown.size(), 0.5);
  const bool coarse = p.coarse_min_unknown > 0 &&
                      static_cast<int>(L.unknown.size()) > p.coarse_min_unknown &&
                      image.rows >= 16 && image.cols >= 16 && depth < 8;
  if (coarse) {
    const cv::Size half((image.cols + 1) / 2, (image.rows + 1) / 2);
    cv::Mat small_img, small_alpha, small_prior;
    cv::resize(image, small_img, half, 0, 0, cv::INTER_AREA);
    if (!prior.empty()) cv::resize(prior, small_prior, half, 0, 0, cv::INTER_AREA);
    SolveStats coarse_st;
    small_alpha = solve_pyramid(small_img, downsample_trimap(trimap, half), small_prior, p,
                                coarse_st, depth + 1);
    st.levels = coarse_st.levels + 1;
    cv::Mat up;
    cv::resize(small_alpha, up, image.size(), 0, 0, cv::INTER_LINEAR);
    for (size_t j = 0; j < x.size(); ++j)
      x[j] = std::clamp(up.ptr<double>()[L.unknown[j]], 0.0, 1.0);
  }
  if (!L.unknown.empty()) solve_level(L, p, x, st);
  cv::Mat alpha(image.size(), CV_64F);
  double* a = alpha.ptr<double>();
  std::copy(L.known.begin(), L.known.end(), a);
  for (size_t j = 0; j < x.size(); ++j) a[L.unknown[j]] = std::clamp(x[j], 0.0, 1.0);
  return alpha;
}

}  // namespace

cv::Mat closed_form_alpha(const cv::Mat& image, const cv::Mat& trimap, const ClosedFormParams& p,
                          SolveStats* stats, const cv::Mat& prior) {
  SEMAT_CHECK(image.type() == CV_8UC3, InvalidArgument, "closed_form_alpha: CV_8UC3 image expected");
  SEMAT_CHECK(trimap.type() == CV_8UC1 && trimap.size() == image.size(), InvalidArgument,
              "closed_form_alpha: trimap must be CV_8UC1 of the image's size ("
                  << image.cols << "x" << image.rows << "), got " << trimap.cols << "x"
                  << trimap.rows);
  SEMAT_CHECK(image.rows >= 3 && image.cols >= 3, InvalidArgument,
              "closed_form_alpha: the image must be at least 3x3 pixels");
  SEMAT_CHECK(p.epsilon > 0 && p.tolerance > 0 && p.max_iterations > 0 && p.prior_weight >= 0,
              InvalidArgument,
              "closed_form_alpha: epsilon, tolerance and max_iterations must be positive");
  SEMAT_CHECK(prior.empty() || (prior.type() == CV_32FC1 && prior.size() == image.size()),
              InvalidArgument, "closed_form_alpha: prior must be CV_32F of the image's size");
  Timer timer;
  SolveStats st;
  cv::Mat alpha(image.size(), CV_32F, cv::Scalar(0));
  alpha.setTo(1.0f, trimap == kForeground);
  const cv::Mat unknown = (trimap != kForeground) & (trimap != kBackground);
  st.unknown = cv::countNonZero(unknown);
  if (st.unknown > 0) {
    cv::Rect roi = cv::boundingRect(unknown);
    roi = cv::Rect(roi.x - 2, roi.y - 2, roi.width + 4, roi.height + 4) &
          cv::Rect(0, 0, image.cols, image.rows);
    const cv::Mat prior_roi = prior.empty() ? cv::Mat() : cv::Mat(prior(roi)).clone();
    cv::Mat a = solve_pyramid(image(roi), trimap(roi).clone(), prior_roi, p, st, 0);
    a.convertTo(alpha(roi), CV_32F);
  }
  st.seconds = timer.seconds();
  if (stats) *stats = st;
  return alpha;
}

}  // namespace semat::matting
