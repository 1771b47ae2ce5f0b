#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "semat/core/error.h"
#include "semat/matting/pipeline.h"
#include "support/synthetic.h"

namespace semat::matting {

TEST(Pipeline, BoxOnlyRecoversAHighContrastSubject) {
  for (unsigned seed : {21u, 22u, 23u}) {
    const test::Scene s = test::make_scene(240, 200, seed, 15);
    const MatteResult r = matte_from_box(s.image, s.box);
    ASSERT_TRUE(r.box.has_value());
    EXPECT_GT(test::iou_half(r.alpha, s.alpha), 0.9) << "seed " << seed;
    EXPECT_GE(r.omega, 3);
    EXPECT_EQ(r.trimap.size(), s.image.size());
  }
}

TEST(Pipeline, TrimapPathUsesTheGivenTrimap) {
  const test::Scene s = test::make_scene(160, 120, 4);
  const cv::Mat trimap = test::true_trimap(s.alpha);
  const MatteResult r = matte_from_trimap(s.image, trimap);
  EXPECT_TRUE(r.mask.empty());
  EXPECT_EQ(cv::norm(r.trimap, trimap, cv::NORM_INF), 0);
  EXPECT_LT(test::mse(r.alpha, s.alpha), 1e-3);
}

TEST(Pipeline, BoxCoveringTheWholeImageStillFindsTheSubject) {
  for (unsigned seed : {31u, 32u, 33u, 34u}) {
    const test::Scene s = test::make_scene(200, 160, seed);
    const MatteResult r = matte_from_box(s.image, Box{0, 0, 200, 160});
    EXPECT_GT(test::iou_half(r.alpha, s.alpha), 0.85) << "seed " << seed;
  }
}

TEST(Pipeline, BoxPipelineIsDeterministic) {
  const test::Scene s = test::make_scene(160, 128, 41);
  const MatteResult a = matte_from_box(s.image, s.box);
  cv::theRNG().state = 12345;  // whatever ran before on this thread must not matter
  cv::randu(cv::Mat(10, 10, CV_8U), 0, 255);
  const MatteResult b = matte_from_box(s.image, s.box);
  EXPECT_EQ(cv::norm(a.alpha, b.alpha, cv::NORM_INF), 0);
}

TEST(Pipeline, BadPromptsAreReported) {
  const test::Scene s = test::make_scene(120, 100, 3);
  EXPECT_THROW(matte_from_box(s.image, Box{0, 0, 500, 50}), InvalidArgument);
  EXPECT_THROW(matte_from_trimap(s.image, cv::Mat(10, 10, CV_8U, cv::Scalar(128))), InvalidArgument);
}

}  // namespace semat::matting
