#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/metrics/metrics.h"
#include "semat/metrics/protocol.h"

namespace semat::metrics {
namespace {

cv::Mat row(std::initializer_list<double> v) {
  cv::Mat m(1, static_cast<int>(v.size()), CV_64FC1);
  int i = 0;
  for (double x : v) m.at<double>(0, i++) = x;
  return m;
}

TEST(Protocol, ParsesNames) {
  EXPECT_EQ(parse_protocol("semat"), Protocol::kSemat);
  EXPECT_EQ(parse_protocol("dim"), Protocol::kDim);
  EXPECT_THROW(parse_protocol("DIM1k"), ConfigError);
  EXPECT_STREQ(protocol_name(Protocol::kDim), "dim");
}

TEST(Protocol, EvalSizeLongSide1024) {
  EXPECT_EQ(semat_eval_size({2048, 1536}), cv::Size(1024, 768));
  EXPECT_EQ(semat_eval_size({100, 50}), cv::Size(1024, 512));  // small images are upscaled
  EXPECT_EQ(semat_eval_size({1000, 333}), cv::Size(1024, 341));  // int(340.992 + 0.5)
  EXPECT_EQ(semat_eval_size({333, 1000}), cv::Size(341, 1024));
  EXPECT_EQ(semat_eval_size({1024, 1024}), cv::Size(1024, 1024));
  EXPECT_EQ(semat_eval_size({1500, 1000}), cv::Size(1024, 683));  // 682.67 rounds up
  EXPECT_THROW(semat_eval_size({0, 10}), InvalidArgument);
}

TEST(Protocol, BilinearHalfPixelNoAntialias) {
  // Upsampling [0, 1] to 4: source x = (d + 0.5) / 2 - 0.5, clamped at 0 -> 0, .25, .75, 1.
  const cv::Mat up = resize_bilinear(row({0, 1}), {4, 1});
  EXPECT_DOUBLE_EQ(up.at<double>(0, 0), 0.0);
  EXPECT_DOUBLE_EQ(up.at<double>(0, 1), 0.25);
  EXPECT_DOUBLE_EQ(up.at<double>(0, 2), 0.75);
  EXPECT_DOUBLE_EQ(up.at<double>(0, 3), 1.0);
  // Downsampling by 4 samples at x = 1.5 and 5.5 with no low-pass: the spike at 3 is missed
  // (an antialiased or area resize would give 2 at the first output).
  const cv::Mat down = resize_bilinear(row({0, 0, 0, 8, 0, 0, 4, 0}), {2, 1});
  EXPECT_DOUBLE_EQ(down.at<double>(0, 0), 0.0);
  EXPECT_DOUBLE_EQ(down.at<double>(0, 1), 2.0);
  // Vertically too, and identity at the same size.
  const cv::Mat col = resize_bilinear(row({0, 1}).t(), {1, 4});
  EXPECT_DOUBLE_EQ(col.at<double>(1, 0), 0.25);
  const cv::Mat same = row({0.1, 0.7});
  EXPECT_EQ(cv::norm(resize_bilinear(same, same.size()), same, cv::NORM_INF), 0.0);
}

TEST(Protocol, QuantisationRoundsHalfUp) {
  const cv::Mat q = quantize_alpha(row({0.0, 0.5, 127.5 / 255.0 - 1e-9, 1.0, 1.2, -0.1}));
  EXPECT_EQ(q.at<double>(0, 0), 0.0);
  EXPECT_EQ(q.at<double>(0, 1), 128.0 / 255.0);  // 128.0 floor -> 128
  EXPECT_EQ(q.at<double>(0, 2), 127.0 / 255.0);
  EXPECT_EQ(q.at<double>(0, 3), 1.0);
  EXPECT_EQ(q.at<double>(0, 4), 1.0);
  EXPECT_EQ(q.at<double>(0, 5), 0.0);
}

TEST(Protocol, SematWholeImageAt1024) {
  // GT 512x256 of zeros is evaluated at 1024x512; a constant 0.2 prediction differs by 0.2
  // everywhere: SAD = 0.2 * 1024 * 512 / 1000, no gradient, and no Conn (every B_k is empty).
  const cv::Mat gt(256, 512, CV_64FC1, cv::Scalar(0));
  const cv::Mat pred(256, 512, CV_64FC1, cv::Scalar(51.0 / 255.0));
  const Scores s = score_semat(pred, gt);
  const double n = 1024.0 * 512.0;
  EXPECT_NEAR(s.sad, 0.2 * n / 1000.0, 1e-9);
  EXPECT_NEAR(s.mse, 0.04, 1e-12);
  EXPECT_NEAR(s.mad, 0.2, 1e-12);
  EXPECT_NEAR(s.grad, 0.0, 1e-15);
  EXPECT_EQ(s.conn, 0.0);
}

TEST(Protocol, SematPredictionAtAnotherSizeIsResized) {
  const cv::Mat gt(100, 200, CV_64FC1, cv::Scalar(102.0 / 255.0));
  for (cv::Size ps : {cv::Size(200, 100), cv::Size(1024, 512), cv::Size(300, 150)}) {
    const Scores s = score_semat(cv::Mat(ps, CV_64FC1, cv::Scalar(102.0 / 255.0)), gt);
    EXPECT_EQ(s.sad, 0.0) << ps;
    EXPECT_EQ(s.conn, 0.0) << ps;
  }
}

TEST(Protocol, SematQuantisesThePredictionButNotTheGt) {
  // GT 0.31 (not a multiple of 1/255) stays as it is; the prediction 0.31 becomes 79/255.
  const cv::Mat gt(1024, 1024, CV_64FC1, cv::Scalar(0.31));
  const Scores s = score_semat(gt.clone(), gt);
  EXPECT_NEAR(s.mad, std::abs(79.0 / 255.0 - 0.31), 1e-12);
}

TEST(Protocol, SematUsesTheBackgroundQuirk) {
  cv::Mat gt(1024, 1024, CV_64FC1, cv::Scalar(0)), pred = gt.clone();
  cv::circle(gt, {400, 512}, 150, cv::Scalar(1.0), cv::FILLED);
  cv::circle(pred, {480, 512}, 150, cv::Scalar(1.0), cv::FILLED);
  const Scores s = score_semat(pred, gt);
  EXPECT_GT(s.sad, 0.0);
  EXPECT_EQ(s.conn, 0.0);  // two discs: Omega is the background whatever the overlap
}

TEST(Protocol, DimUnknownRegionOnly) {
  const cv::Mat gt = row({0.0, 0.5, 1.0, 0.2});
  const cv::Mat pred = row({0.5, 0.5, 0.0, 0.4});
  const cv::Mat tri = (cv::Mat_<std::uint8_t>(1, 4) << 0, 128, 128, 255);
  const Scores s = score_dim(pred, gt, tri);
  EXPECT_NEAR(s.sad, 1.0 / 1000.0, 1e-15);  // only |0.5-0.5| + |0-1|
  EXPECT_NEAR(s.mse, 1.0 / 2.0, 1e-15);     // no epsilon in the DIM denominator
  EXPECT_NEAR(s.mad, 1.0 / 2.0, 1e-15);
}

TEST(Protocol, DimErrorsNameTheFile) {
  const cv::Mat a(4, 4, CV_64FC1, cv::Scalar(0)), b(4, 5, CV_64FC1, cv::Scalar(0));
  const cv::Mat tri(4, 4, CV_8UC1, cv::Scalar(128));
  try {
    score_dim(b, a, tri, "cat.png");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("cat.png"), std::string::npos) << e.what();
  }
  EXPECT_THROW(score_dim(a, a, cv::Mat(4, 4, CV_8UC1, cv::Scalar(255)), "x"), DataError);  // no unknowns
  EXPECT_THROW(score_dim(a, a, cv::Mat(3, 4, CV_8UC1, cv::Scalar(128)), "x"), DataError);
}

TEST(Protocol, DimGradUsesMat2Gray) {
  cv::Mat gt(64, 64, CV_64FC1, cv::Scalar(0));
  cv::circle(gt, {32, 32}, 16, cv::Scalar(1.0), cv::FILLED);
  cv::GaussianBlur(gt, gt, {0, 0}, 2.0);
  cv::normalize(gt, gt, 0.0, 1.0, cv::NORM_MINMAX);
  const cv::Mat half = gt * 0.5;
  const cv::Mat tri(64, 64, CV_8UC1, cv::Scalar(128));
  EXPECT_NEAR(score_dim(half, gt, tri).grad, 0.0, 1e-15);
  EXPECT_GT(sum_gradient_error(half, gt, cv::Mat()), 0.0);
}

}  // namespace
}  // namespace semat::metrics
