#include <gtest/gtest.h>

#include <random>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/matting/closed_form.h"
#include "semat/matting/trimap.h"
#include "support/synthetic.h"

namespace semat::matting {
namespace {

// Slow reference: the matting Laplacian assembled densely, window by window, exactly as in
// Levin et al. (eq. 12), then L_uu x = -L_uk a_k solved directly.
cv::Mat reference_closed_form(const cv::Mat& image, const cv::Mat& trimap, double eps) {
  const int h = image.rows, w = image.cols, n = h * w;
  cv::Mat L = cv::Mat::zeros(n, n, CV_64F);
  for (int cy = 1; cy < h - 1; ++cy)
    for (int cx = 1; cx < w - 1; ++cx) {
      int idx[9];
      cv::Mat I(9, 3, CV_64F);
      int k = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx, ++k) {
          idx[k] = (cy + dy) * w + cx + dx;
          const cv::Vec3b v = image.at<cv::Vec3b>(cy + dy, cx + dx);
          for (int c = 0; c < 3; ++c) I.at<double>(k, c) = v[c] / 255.0;
        }
      cv::Mat mu;
      cv::reduce(I, mu, 0, cv::REDUCE_AVG);
      cv::Mat D = I - cv::repeat(mu, 9, 1);
      cv::Mat cov = D.t() * D / 9.0 + cv::Mat::eye(3, 3, CV_64F) * (eps / 9.0);
      cv::Mat G = (1.0 + D * cov.inv() * D.t()) / 9.0;
      for (int i = 0; i < 9; ++i)
        for (int j = 0; j < 9; ++j)
          L.at<double>(idx[i], idx[j]) += (i == j ? 1.0 : 0.0) - G.at<double>(i, j);
    }
  std::vector<int> u, kn;
  for (int p = 0; p < n; ++p) (trimap.ptr<unsigned char>()[p] == kUnknown ? u : kn).push_back(p);
  cv::Mat Luu(static_cast<int>(u.size()), static_cast<int>(u.size()), CV_64F);
  cv::Mat rhs(static_cast<int>(u.size()), 1, CV_64F, cv::Scalar(0));
  for (size_t i = 0; i < u.size(); ++i) {
    for (size_t j = 0; j < u.size(); ++j) Luu.at<double>(i, j) = L.at<double>(u[i], u[j]);
    for (int p : kn)
      rhs.at<double>(i) -= L.at<double>(u[i], p) * (trimap.ptr<unsigned char>()[p] == kForeground);
  }
  cv::Mat x;
  cv::solve(Luu, rhs, x, cv::DECOMP_LU);
  cv::Mat alpha(h, w, CV_64F);
  for (int p : kn) alpha.ptr<double>()[p] = trimap.ptr<unsigned char>()[p] == kForeground;
  for (size_t i = 0; i < u.size(); ++i) alpha.ptr<double>()[u[i]] = x.at<double>(i);
  return alpha;
}

}  // namespace

TEST(ClosedForm, MatchesTheAssembledLaplacianReference) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> px(0, 255);
  cv::Mat image(12, 14, CV_8UC3);
  for (auto it = image.begin<cv::Vec3b>(); it != image.end<cv::Vec3b>(); ++it)
    *it = cv::Vec3b(px(rng), px(rng), px(rng));
  cv::Mat trimap(image.size(), CV_8U, cv::Scalar(kBackground));
  trimap(cv::Rect(0, 0, 5, 12)).setTo(kForeground);
  trimap(cv::Rect(5, 2, 5, 8)).setTo(kUnknown);
  ClosedFormParams p;
  p.epsilon = 1e-3;  // a random-noise image needs a larger epsilon to be well conditioned
  p.tolerance = 1e-13;
  p.coarse_min_unknown = 0;
  const cv::Mat ours = closed_form_alpha(image, trimap, p);
  cv::Mat ref = reference_closed_form(image, trimap, p.epsilon);
  ref = cv::min(cv::max(ref, 0.0), 1.0);
  ref.convertTo(ref, CV_32F);
  EXPECT_LT(cv::norm(ours, ref, cv::NORM_INF), 1e-5);
}

TEST(ClosedForm, RecoversSyntheticAlphaWithTheTrueTrimap) {
  for (unsigned seed : {1u, 2u, 3u}) {
    const test::Scene s = test::make_scene(200, 160, seed);
    const cv::Mat trimap = test::true_trimap(s.alpha);
    SolveStats st;
    const cv::Mat alpha = closed_form_alpha(s.image, trimap, {}, &st);
    const double err = test::mse(alpha, s.alpha, trimap == kUnknown);
    EXPECT_LT(err, 1e-3) << "seed " << seed;
    EXPECT_GT(st.unknown, 1000);
    // Known pixels keep their trimap value exactly.
    EXPECT_EQ(cv::countNonZero((trimap == kForeground) & (alpha != 1.0f)), 0);
    EXPECT_EQ(cv::countNonZero((trimap == kBackground) & (alpha != 0.0f)), 0);
  }
}

TEST(ClosedForm, CoarseToFineConvergesToTheSameSolution) {
  const test::Scene s = test::make_scene(240, 200, 11);
  cv::Mat trimap = test::true_trimap(s.alpha, 6);
  ClosedFormParams flat, pyramid;
  flat.coarse_min_unknown = 0;
  flat.tolerance = pyramid.tolerance = 1e-9;
  flat.max_iterations = pyramid.max_iterations = 20000;
  pyramid.coarse_min_unknown = 500;
  SolveStats a, b;
  const cv::Mat x = closed_form_alpha(s.image, trimap, flat, &a);
  const cv::Mat y = closed_form_alpha(s.image, trimap, pyramid, &b);
  EXPECT_GT(b.levels, 1);
  EXPECT_LT(cv::norm(x, y, cv::NORM_INF), 2e-3);
  EXPECT_LT(b.iterations, a.iterations);
}

TEST(ClosedForm, RejectsMismatchedInputs) {
  const cv::Mat image(20, 20, CV_8UC3, cv::Scalar(0));
  EXPECT_THROW(closed_form_alpha(image, cv::Mat(10, 20, CV_8U, cv::Scalar(128))), InvalidArgument);
  EXPECT_THROW(closed_form_alpha(cv::Mat(20, 20, CV_8UC1), cv::Mat(20, 20, CV_8U)), InvalidArgument);
}

}  // namespace semat::matting
