// Matting scenes with known alpha, foreground and background for the tests (the generator is
// semat/matting/synthetic_scene.h, the one the trainer uses too), and the error measures the
// tests compare with.
#pragma once

#include <opencv2/core/mat.hpp>

#include "semat/core/geometry.h"

namespace semat::test {

struct Scene {
  cv::Mat image;       ///< CV_8UC3 composite
  cv::Mat alpha;       ///< CV_32F true alpha in [0, 1]
  cv::Mat foreground;  ///< CV_32FC3 in [0, 1]
  cv::Mat background;  ///< CV_32FC3 in [0, 1]
  Box box;             ///< tight box around alpha > 0, padded by `margin`
};

/// Scene `seed` of SceneVariety::upright() (an upright body with strands rising from it, fixed
/// colours), with its box.
Scene make_scene(int width, int height, unsigned seed, int margin = 12);

/// Trimap from a true alpha: unknown where 0 < alpha < 1, dilated by `pad` pixels.
cv::Mat true_trimap(const cv::Mat& alpha, int pad = 2);

/// Mean squared error of a - b over the nonzero pixels of `where` (all pixels if empty).
double mse(const cv::Mat& a, const cv::Mat& b, const cv::Mat& where = cv::Mat());

/// IoU of (a > 0.5) and (b > 0.5).
double iou_half(const cv::Mat& a, const cv::Mat& b);

}  // namespace semat::test
