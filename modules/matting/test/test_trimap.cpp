#include <gtest/gtest.h>

#include <cmath>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/matting/trimap.h"

namespace semat::matting {
namespace {

// Length of the run of `value` starting at column x0 of row y, going right.
int run_length(const cv::Mat& t, int y, int x0, unsigned char value) {
  int n = 0;
  while (x0 + n < t.cols && t.at<unsigned char>(y, x0 + n) == value) ++n;
  return n;
}

}  // namespace

TEST(Trimap, DiscKernelIsOddAndCentred) {
  EXPECT_EQ(disc_kernel(4).size(), cv::Size(5, 5));
  EXPECT_EQ(disc_kernel(5).size(), cv::Size(5, 5));
  EXPECT_EQ(disc_kernel(30).size(), cv::Size(31, 31));
  EXPECT_EQ(disc_kernel(0).size(), cv::Size(1, 1));
}

TEST(Trimap, SquareGetsOmegaFromAreaAndBandsOfOmega) {
  cv::Mat mask = cv::Mat::zeros(300, 300, CV_8U);
  mask(cv::Rect(100, 100, 100, 100)).setTo(255);
  const TrimapResult r = mask_to_trimap(mask);

  // Dilating by a 5x5 disc grows each straight edge by 2 px: the dilated square is 104 wide
  // with the disc's rounded corners.
  cv::Mat dilated;
  cv::dilate(mask, dilated, cv::getStructuringElement(cv::MORPH_ELLIPSE, {5, 5}));
  EXPECT_EQ(r.area, cv::countNonZero(dilated));
  EXPECT_GT(r.area, 104 * 104 - 16);
  EXPECT_LE(r.area, 104 * 104);
  EXPECT_DOUBLE_EQ(r.raw_omega, std::sqrt(r.area / 12.0));
  const int k = static_cast<int>(std::lround(r.raw_omega));
  EXPECT_EQ(k, 30);
  EXPECT_EQ(r.omega, k);

  // Middle row: background up to 15 px outside the dilated edge (x = 98 - 15), unknown for
  // 2 * 15 px, then foreground; symmetric on the right.
  const int y = 150, half = k / 2;
  EXPECT_EQ(r.trimap.at<unsigned char>(y, 98 - half - 1), kBackground);
  EXPECT_EQ(run_length(r.trimap, y, 98 - half, kUnknown), 2 * half);
  EXPECT_EQ(run_length(r.trimap, y, 98 + half, kForeground), 104 - 2 * half);
  EXPECT_EQ(run_length(r.trimap, y, 202 - half, kUnknown), 2 * half);
  EXPECT_EQ(r.trimap.at<unsigned char>(y, 202 + half), kBackground);
}

TEST(Trimap, EtaScalesOmega) {
  cv::Mat mask = cv::Mat::zeros(400, 400, CV_8U);
  cv::circle(mask, {200, 200}, 80, 255, cv::FILLED);
  TrimapParams p;
  p.eta = 48;  // 4x eta -> half omega
  const TrimapResult a = mask_to_trimap(mask), b = mask_to_trimap(mask, p);
  EXPECT_NEAR(a.raw_omega / b.raw_omega, 2.0, 1e-9);
  EXPECT_GT(cv::countNonZero(a.trimap == kUnknown), 1.8 * cv::countNonZero(b.trimap == kUnknown));
}

TEST(Trimap, TinyMasksKeepAMinimumBand) {
  cv::Mat mask = cv::Mat::zeros(50, 50, CV_8U);
  mask(cv::Rect(20, 20, 3, 3)).setTo(255);
  const TrimapResult r = mask_to_trimap(mask);
  EXPECT_LT(r.raw_omega, 3.0);
  EXPECT_EQ(r.omega, 3.0);
  EXPECT_GT(cv::countNonZero(r.trimap == kForeground), 0);
  EXPECT_GT(cv::countNonZero(r.trimap == kUnknown), 0);
}

TEST(Trimap, ThinMasksKeepAForegroundCore) {
  cv::Mat mask = cv::Mat::zeros(100, 500, CV_8U);
  mask(cv::Rect(50, 47, 400, 6)).setTo(255);
  const TrimapResult r = mask_to_trimap(mask);
  EXPECT_GT(r.raw_omega, 15.0);  // the plain rule would erase the foreground
  EXPECT_LE(r.omega, 5.0);       // clamped to half the 10 px dilated thickness
  EXPECT_GT(cv::countNonZero(r.trimap == kForeground), 300);
}

TEST(Trimap, SubjectTouchingTheBorderHasNoUnknownStripeThere) {
  cv::Mat mask = cv::Mat::zeros(200, 200, CV_8U);
  mask(cv::Rect(50, 80, 100, 120)).setTo(255);  // reaches the bottom edge
  const TrimapResult r = mask_to_trimap(mask);
  EXPECT_EQ(r.trimap.at<unsigned char>(199, 100), kForeground);
}

TEST(Trimap, EmptyMaskIsAnError) {
  EXPECT_THROW(mask_to_trimap(cv::Mat::zeros(10, 10, CV_8U)), DataError);
}

TEST(Trimap, CanonicalValuesAndUsability) {
  cv::Mat g = (cv::Mat_<unsigned char>(1, 6) << 0, 84, 85, 169, 170, 255);
  const cv::Mat t = canonical_trimap(g, "t.png");
  const cv::Mat expected = (cv::Mat_<unsigned char>(1, 6) << 0, 0, 128, 128, 255, 255);
  EXPECT_EQ(cv::norm(t, expected, cv::NORM_INF), 0);
  EXPECT_NO_THROW(check_trimap_usable(t, "t.png"));
  EXPECT_THROW(check_trimap_usable(cv::Mat(3, 3, CV_8U, cv::Scalar(255)), "all_fg.png"), DataError);
  EXPECT_THROW(check_trimap_usable(cv::Mat(3, 3, CV_8U, cv::Scalar(128)), "no_fg.png"), DataError);
}

}  // namespace semat::matting
