#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "semat/matting/foreground.h"
#include "support/synthetic.h"

namespace semat::matting {

TEST(Foreground, RecoversTheForegroundColourAtSoftEdges) {
  const test::Scene s = test::make_scene(200, 160, 5);
  const ForegroundResult r = estimate_foreground(s.image, s.alpha);
  ASSERT_EQ(r.foreground.type(), CV_32FC3);
  // Where the subject is partly transparent the image mixes in the background; the estimate
  // must be much closer to the true foreground than the raw image colours are.
  const cv::Mat soft = (s.alpha > 0.3f) & (s.alpha < 0.97f);
  ASSERT_GT(cv::countNonZero(soft), 200);
  cv::Mat img;
  s.image.convertTo(img, CV_32FC3, 1.0 / 255);
  const double est_err = cv::norm(r.foreground, s.foreground, cv::NORM_L1, soft) / cv::countNonZero(soft);
  const double raw_err = cv::norm(img, s.foreground, cv::NORM_L1, soft) / cv::countNonZero(soft);
  EXPECT_LT(est_err, 0.35 * raw_err) << est_err << " vs " << raw_err;
  EXPECT_LT(est_err / 3, 0.03);
  // The re-composite reproduces the image.
  cv::Mat a3;
  cv::merge(std::vector<cv::Mat>{s.alpha, s.alpha, s.alpha}, a3);
  const cv::Mat comp = r.foreground.mul(a3) + r.background.mul(cv::Scalar::all(1.0) - a3);
  EXPECT_LT(cv::norm(comp, img, cv::NORM_L1) / (img.total() * 3), 0.01);
}

}  // namespace semat::matting
