#include <gtest/gtest.h>

#include <cmath>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/metrics/metrics.h"

namespace semat::metrics {
namespace {

const cv::Mat kAll;

cv::Mat mat(int rows, int cols, std::initializer_list<double> v) {
  cv::Mat m(rows, cols, CV_64FC1);
  auto it = v.begin();
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x) m.at<double>(y, x) = *it++;
  return m;
}

// The obvious 9x9 true convolution with replicated borders, for checking the separable one.
cv::Mat slow_convolve(const cv::Mat& in, const cv::Mat& k) {
  const int h = k.rows / 2;
  cv::Mat out(in.size(), CV_64FC1);
  for (int y = 0; y < in.rows; ++y)
    for (int x = 0; x < in.cols; ++x) {
      double acc = 0;
      for (int i = 0; i < k.rows; ++i)
        for (int j = 0; j < k.cols; ++j) {
          const int yy = std::clamp(y - (i - h), 0, in.rows - 1);
          const int xx = std::clamp(x - (j - h), 0, in.cols - 1);
          acc += k.at<double>(i, j) * in.at<double>(yy, xx);
        }
      out.at<double>(y, x) = acc;
    }
  return out;
}

cv::Mat disk(int size, cv::Point c, int r) {
  cv::Mat m(size, size, CV_64FC1, cv::Scalar(0));
  cv::circle(m, c, r, cv::Scalar(1.0), cv::FILLED);
  return m;
}

TEST(Metrics, SadMseMadByHand) {
  const cv::Mat p = mat(2, 2, {0.0, 1.0, 0.5, 0.25});
  const cv::Mat g = mat(2, 2, {0.0, 0.5, 0.5, 1.0});
  EXPECT_DOUBLE_EQ(sum_abs_error(p, g, kAll), 1.25);
  EXPECT_DOUBLE_EQ(sum_squared_error(p, g, kAll), 0.8125);
  const cv::Mat region = (cv::Mat_<std::uint8_t>(2, 2) << 0, 255, 128, 0);
  EXPECT_DOUBLE_EQ(sum_abs_error(p, g, region), 0.5);
  EXPECT_DOUBLE_EQ(sum_squared_error(p, g, region), 0.25);
  EXPECT_EQ(region_size(p, region), 2);
  EXPECT_EQ(region_size(p, kAll), 4);
}

TEST(Metrics, RejectsWrongTypesAndSizes) {
  const cv::Mat p(3, 3, CV_64FC1, cv::Scalar(0));
  EXPECT_THROW(sum_abs_error(p, cv::Mat(3, 4, CV_64FC1, cv::Scalar(0)), kAll), InvalidArgument);
  EXPECT_THROW(sum_abs_error(p, cv::Mat(3, 3, CV_32FC1, cv::Scalar(0)), kAll), InvalidArgument);
  EXPECT_THROW(sum_gradient_error(p, p, cv::Mat(2, 2, CV_8UC1)), InvalidArgument);
}

TEST(Metrics, GradKernelIsTheNormalisedNineByNineDoG) {
  const cv::Mat k = gradient_kernel_x();
  ASSERT_EQ(k.rows, 9);
  ASSERT_EQ(k.cols, 9);
  EXPECT_NEAR(cv::norm(k), 1.0, 1e-15);
  // g(i) g'(j): antisymmetric along the columns, symmetric along the rows, negative right of centre.
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 9; ++j) {
      EXPECT_NEAR(k.at<double>(i, j), -k.at<double>(i, 8 - j), 1e-17);
      EXPECT_NEAR(k.at<double>(i, j), k.at<double>(8 - i, j), 1e-17);
    }
  EXPECT_LT(k.at<double>(4, 5), 0.0);
  // Unnormalised centre-row value g(0) g'(1) for sigma 1.4, up to the norm: ratio of two taps.
  const double s = 1.4;
  const double ratio = (2 * std::exp(-4 / (2 * s * s))) / (1 * std::exp(-1 / (2 * s * s)));
  EXPECT_NEAR(k.at<double>(4, 6) / k.at<double>(4, 5), ratio, 1e-12);
}

TEST(Metrics, GradMatchesSlowDirectConvolution) {
  cv::Mat x(23, 17, CV_64FC1);
  cv::RNG rng(3);
  rng.fill(x, cv::RNG::UNIFORM, 0.0, 1.0);
  cv::Mat gx, gy;
  gaussian_gradient(x, gx, gy);
  const cv::Mat hx = gradient_kernel_x();
  const cv::Mat hy = hx.t();
  EXPECT_LT(cv::norm(gx, slow_convolve(x, hx), cv::NORM_INF), 1e-13);
  EXPECT_LT(cv::norm(gy, slow_convolve(x, hy), cv::NORM_INF), 1e-13);

  // And the error sum against the slow magnitudes.
  cv::Mat y(23, 17, CV_64FC1);
  rng.fill(y, cv::RNG::UNIFORM, 0.0, 1.0);
  auto mag = [&](const cv::Mat& m) {
    cv::Mat a = slow_convolve(m, hx), b = slow_convolve(m, hy), out;
    cv::magnitude(a, b, out);
    return out;
  };
  const cv::Mat d = mag(x) - mag(y);
  EXPECT_NEAR(sum_gradient_error(x, y, kAll), cv::sum(d.mul(d))[0], 1e-12);
}

TEST(Metrics, GradIsATrueConvolution) {
  // A rising ramp: true convolution with H_x (whose right half is negative) gives a positive Gx;
  // a correlation would give a negative one.
  cv::Mat ramp(20, 30, CV_64FC1);
  for (int y = 0; y < ramp.rows; ++y)
    for (int x = 0; x < ramp.cols; ++x) ramp.at<double>(y, x) = x / 100.0;
  cv::Mat gx, gy;
  gaussian_gradient(ramp, gx, gy);
  EXPECT_GT(gx.at<double>(10, 15), 0.0);
  EXPECT_NEAR(gy.at<double>(10, 15), 0.0, 1e-15);
  // Interior Gx = c * sum_j k'[j] (4 - j) * sum_i k[i], the same at every interior pixel.
  EXPECT_NEAR(gx.at<double>(10, 15), gx.at<double>(5, 12), 1e-15);
  // Replicated borders: near the left edge the ramp looks flatter, so the response is smaller.
  EXPECT_LT(gx.at<double>(10, 0), gx.at<double>(10, 15));
}

TEST(Metrics, GradZeroForConstantAndEqualMaps) {
  const cv::Mat c(16, 16, CV_64FC1, cv::Scalar(0.3));
  const cv::Mat z(16, 16, CV_64FC1, cv::Scalar(0.0));
  EXPECT_NEAR(sum_gradient_error(c, z, kAll), 0.0, 1e-20);
  const cv::Mat d = disk(32, {16, 16}, 8);
  EXPECT_EQ(sum_gradient_error(d, d, kAll), 0.0);
  EXPECT_GT(sum_gradient_error(d, cv::Mat(cv::Mat::zeros(32, 32, CV_64FC1)), kAll), 0.0);
  // mat2gray (DIM) makes a half-strength copy identical; the /255 definition does not.
  EXPECT_NEAR(sum_gradient_error(d * 0.5, d, kAll, true), 0.0, 1e-20);
  EXPECT_GT(sum_gradient_error(d * 0.5, d, kAll, false), 1.0);
}

TEST(Metrics, ConnZeroForIdenticalMattes) {
  cv::Mat a(40, 40, CV_64FC1);
  cv::RNG rng(5);
  rng.fill(a, cv::RNG::UNIFORM, 0.0, 1.0);
  for (ConnRule r : {ConnRule::kLargestWithBackground, ConnRule::kLargestForeground,
                     ConnRule::kLargestForegroundEmptyIsNone})
    EXPECT_EQ(sum_connectivity_error(a, a, kAll, r), 0.0);
}

TEST(Metrics, ConnBackgroundWinsTheArgmax) {
  // A 2x2 block in a 5x5 image: P = 1, G = 0.5 there. B_1..5 = the block; the background (21
  // pixels) outnumbers it, so SEMat's Omega is the background and the block gets l = 0:
  // phi_P = 0, phi_G = 0.5 on 4 pixels.
  cv::Mat p(5, 5, CV_64FC1, cv::Scalar(0)), g(5, 5, CV_64FC1, cv::Scalar(0));
  p(cv::Rect(1, 1, 2, 2)) = 1.0;
  g(cv::Rect(1, 1, 2, 2)) = 0.5;
  EXPECT_NEAR(sum_connectivity_error(p, g, kAll, ConnRule::kLargestWithBackground), 2.0, 1e-12);
  // DIM: Omega is the block for k <= 5, empty B_6.. are skipped, so the block keeps l = 1.
  EXPECT_NEAR(sum_connectivity_error(p, g, kAll, ConnRule::kLargestForeground), 0.0, 1e-12);
  // InstMatt: at k = 6 Omega is empty, the block gets l = 0.5: phi_P = 0.5, phi_G = 1.
  EXPECT_NEAR(sum_connectivity_error(p, g, kAll, ConnRule::kLargestForegroundEmptyIsNone), 2.0, 1e-12);
  const cv::Mat l = connectivity_levels(p, g, ConnRule::kLargestWithBackground);
  EXPECT_EQ(l.at<double>(1, 1), 0.0);
  EXPECT_EQ(l.at<double>(0, 0), 1.0);
}

TEST(Metrics, ConnDiskAgainstShiftedDisk) {
  // metrics.md: with the background quirk two binary discs give Conn 0 whatever their overlap;
  // with the largest-foreground rule every pixel of the symmetric difference counts 1.
  const cv::Mat a = disk(64, {28, 32}, 12), b = disk(64, {36, 32}, 12);
  EXPECT_EQ(sum_connectivity_error(a, b, kAll, ConnRule::kLargestWithBackground), 0.0);
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  EXPECT_NEAR(sum_connectivity_error(a, b, kAll, ConnRule::kLargestForeground), cv::sum(diff)[0], 1e-9);
}

TEST(Metrics, ConnTieGoesToBackground) {
  // Columns 0 and 2 are foreground, column 1 background: three labels of 2 pixels each. The
  // background (label 0) wins the tie, so the foreground pixels get l = t_0 = 0.
  const cv::Mat a = mat(2, 3, {1, 0, 1, 1, 0, 1});
  const cv::Mat l = connectivity_levels(a, a, ConnRule::kLargestWithBackground);
  EXPECT_EQ(l.at<double>(0, 0), 0.0);
  EXPECT_EQ(l.at<double>(1, 2), 0.0);
  EXPECT_EQ(l.at<double>(0, 1), 1.0);
}

TEST(Metrics, ConnForegroundTieGoesToTheLowestLabel) {
  // Two 4-pixel components and a 2-pixel background: label 1 (the left one, first in raster
  // order) wins, so the right one leaves Omega at k = 1. The last-max rule would pick the right.
  const cv::Mat a = mat(2, 5, {1, 1, 0, 1, 1, 1, 1, 0, 1, 1});
  const cv::Mat l = connectivity_levels(a, a, ConnRule::kLargestWithBackground);
  EXPECT_EQ(l.at<double>(0, 0), 1.0);
  EXPECT_EQ(l.at<double>(1, 1), 1.0);
  EXPECT_EQ(l.at<double>(0, 3), 0.0);
  EXPECT_EQ(l.at<double>(0, 2), 0.0);
}

TEST(Metrics, ConnTieOrderRasterVersusColumnMajor) {
  // A (top right) comes first in raster order, B (bottom left) first in MATLAB's column-major order.
  const cv::Mat a = mat(4, 4, {0, 0, 1, 1,  //
                               0, 0, 1, 1,  //
                               1, 1, 0, 0,  //
                               1, 1, 0, 0});
  const cv::Mat dim = connectivity_levels(a, a, ConnRule::kLargestForeground);
  EXPECT_EQ(dim.at<double>(3, 0), 1.0);  // B kept
  EXPECT_EQ(dim.at<double>(0, 3), 0.0);
  const cv::Mat inst = connectivity_levels(a, a, ConnRule::kLargestForegroundEmptyIsNone);
  EXPECT_EQ(inst.at<double>(0, 3), 1.0);  // A kept
  EXPECT_EQ(inst.at<double>(3, 0), 0.0);
  // SEMat: the background (8) beats both 4-pixel components.
  const cv::Mat semat = connectivity_levels(a, a, ConnRule::kLargestWithBackground);
  EXPECT_EQ(semat.at<double>(0, 0), 1.0);
  EXPECT_EQ(semat.at<double>(0, 3), 0.0);
  EXPECT_EQ(semat.at<double>(3, 0), 0.0);
}

TEST(Metrics, ConnThreshold153IsBelowPointSix) {
  // 153/255 = 0.6 in double is below t_6 = 0.6000000000000001, so the first pixel leaves Omega at
  // k = 6 with l = t_5 = 0.5: phi_P = 1 (d = 0.1), phi_G = 0.5 -> Conn sum 0.5. A float32
  // comparison would put it in B_6 and give 0.4.
  const cv::Mat p = mat(1, 3, {153.0 / 255.0, 1, 1});
  const cv::Mat g = mat(1, 3, {1, 1, 1});
  EXPECT_NEAR(sum_connectivity_error(p, g, kAll, ConnRule::kLargestForeground), 0.5, 1e-12);
  EXPECT_EQ(connectivity_levels(p, g, ConnRule::kLargestForeground).at<double>(0, 0), 0.5);
  // The SEMat rule keeps l in float32: t_5 = float(0.5) = 0.5 exactly.
  const cv::Mat q = mat(1, 2, {153.0 / 255.0, 1});
  const cv::Mat l = connectivity_levels(q, mat(1, 2, {1, 1}), ConnRule::kLargestWithBackground);
  EXPECT_EQ(l.at<double>(0, 0), 1.0);
  EXPECT_EQ(l.at<double>(0, 1), 0.5);  // tie 1:1 at k = 6, background wins
}

TEST(Metrics, ConnFloat32LevelsUnderTheSematRule) {
  // 0.7000000000000001 as a float32 l value: l = float(t_7), not t_7.
  const cv::Mat p = mat(1, 3, {0.75, 1, 1});
  const cv::Mat l = connectivity_levels(p, mat(1, 3, {1, 1, 1}), ConnRule::kLargestForegroundEmptyIsNone);
  EXPECT_EQ(l.at<double>(0, 0), static_cast<double>(0.7f));
  const cv::Mat d = connectivity_levels(p, mat(1, 3, {1, 1, 1}), ConnRule::kLargestForeground);
  EXPECT_EQ(d.at<double>(0, 0), 7 * 0.1);
}

TEST(Metrics, ConnEmptyIntersections) {
  // P = 0 everywhere: every B_k is empty. SEMat (background is Omega) and DIM (skip) leave l = 1,
  // so phi = 1 for both and Conn = 0; InstMatt's empty Omega puts l = 0 everywhere at k = 1 and
  // each GT pixel at 1 counts phi_G = 0.
  cv::Mat p(3, 3, CV_64FC1, cv::Scalar(0)), g(3, 3, CV_64FC1, cv::Scalar(0));
  g(cv::Rect(0, 0, 2, 2)) = 1.0;
  EXPECT_EQ(sum_connectivity_error(p, g, kAll, ConnRule::kLargestWithBackground), 0.0);
  EXPECT_EQ(sum_connectivity_error(p, g, kAll, ConnRule::kLargestForeground), 0.0);
  EXPECT_NEAR(sum_connectivity_error(p, g, kAll, ConnRule::kLargestForegroundEmptyIsNone), 4.0, 1e-12);
}

TEST(Metrics, ConnRegionRestrictsTheSumNotTheComponents) {
  const cv::Mat a = disk(64, {28, 32}, 12), b = disk(64, {36, 32}, 12);
  cv::Mat region(64, 64, CV_8UC1, cv::Scalar(0));
  region(cv::Rect(0, 0, 32, 64)) = 255;  // left half
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  EXPECT_NEAR(sum_connectivity_error(a, b, region, ConnRule::kLargestForeground),
              cv::sum(diff(cv::Rect(0, 0, 32, 64)))[0], 1e-9);
}

}  // namespace
}  // namespace semat::metrics
