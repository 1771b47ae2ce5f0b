#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/matting/synthetic_scene.h"

namespace semat::matting {
namespace {

double max_diff(const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_INF); }

}  // namespace

TEST(SyntheticScene, SameSeedSamePixelsOtherSeedOtherScene) {
  for (const SceneVariety& v : {SceneVariety::varied(), SceneVariety::upright()}) {
    const SyntheticScene a = synthesize_scene({96, 80}, 7, v), b = synthesize_scene({96, 80}, 7, v);
    EXPECT_EQ(max_diff(a.image, b.image), 0);
    EXPECT_EQ(max_diff(a.alpha, b.alpha), 0);
    const SyntheticScene c = synthesize_scene({96, 80}, 8, v);
    EXPECT_GT(max_diff(a.alpha, c.alpha), 0.5);
  }
}

// The image is the compositing equation of its own alpha, F and B (up to 8-bit rounding, where
// B stays inside [0, 1]); alpha has exact known regions and a soft band between them.
TEST(SyntheticScene, ImageIsTheCompositeOfItsAlphaForegroundAndBackground) {
  for (const SceneVariety& v : {SceneVariety::varied(), SceneVariety::upright()}) {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
      const SyntheticScene s = synthesize_scene({120, 100}, seed, v);
      ASSERT_EQ(s.image.type(), CV_8UC3);
      ASSERT_EQ(s.alpha.type(), CV_32F);
      ASSERT_EQ(s.image.size(), cv::Size(120, 100));
      double lo, hi;
      cv::minMaxLoc(s.alpha, &lo, &hi);
      EXPECT_EQ(lo, 0.0);
      EXPECT_EQ(hi, 1.0);
      const int fg = cv::countNonZero(s.alpha == 1), bg = cv::countNonZero(s.alpha == 0);
      const int soft = static_cast<int>(s.alpha.total()) - fg - bg;
      EXPECT_GT(fg, 100) << "seed " << seed;
      EXPECT_GT(bg, 1000) << "seed " << seed;
      EXPECT_GT(soft, 50) << "seed " << seed;
      cv::Mat a3, comp, comp8;
      cv::merge(std::vector<cv::Mat>{s.alpha, s.alpha, s.alpha}, a3);
      comp = s.foreground.mul(a3) + s.background.mul(cv::Scalar::all(1.0) - a3);
      comp.convertTo(comp8, CV_8UC3, 255.0);
      EXPECT_EQ(max_diff(comp8, s.image), 0);
    }
  }
}

// upright(): the body sits near the centre and the strands rise above it.
TEST(SyntheticScene, UprightScenesStandInTheMiddle) {
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    const SyntheticScene s = synthesize_scene({200, 160}, seed, SceneVariety::upright());
    const cv::Rect core = cv::boundingRect(s.alpha == 1);
    const cv::Rect any = cv::boundingRect(s.alpha > 0);
    EXPECT_GT(core.x, 20);
    EXPECT_LT(core.x + core.width, 180);
    EXPECT_LT(any.y, core.y - 10) << "strands above the body, seed " << seed;
    EXPECT_GT(any.y, 0) << "strands inside the image, seed " << seed;
  }
}

TEST(SyntheticScene, RejectsTinySizes) {
  EXPECT_THROW(synthesize_scene({4, 64}, 0, SceneVariety::varied()), InvalidArgument);
}

}  // namespace semat::matting
