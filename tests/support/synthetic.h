// Synthetic matting scenes with known alpha, foreground and background, generated in the tests
// so no data files are needed.
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

/// A soft-edged blob (ellipse + rectangle "body") with a few thin anti-aliased strands, smooth
/// coloured foreground over a smooth sinusoidal texture. `contrast` in (0, 1] scales how far the
/// foreground colours are from the background's.
Scene make_scene(int width, int height, unsigned seed, double contrast = 1.0, int margin = 12);

/// Trimap from a true alpha: unknown where 0 < alpha < 1, dilated by `pad` pixels.
cv::Mat true_trimap(const cv::Mat& alpha, int pad = 2);

/// Mean squared error of a - b over the nonzero pixels of `where` (all pixels if empty).
double mse(const cv::Mat& a, const cv::Mat& b, const cv::Mat& where = cv::Mat());

/// IoU of (a > 0.5) and (b > 0.5).
double iou_half(const cv::Mat& a, const cv::Mat& b);

}  // namespace semat::test
