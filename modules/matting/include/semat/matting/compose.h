// Turning alpha and foreground into the files a person looks at.
#pragma once

#include <optional>
#include <string>

#include <opencv2/core/mat.hpp>

#include "semat/core/geometry.h"

namespace semat::matting {

/// Background for composites: a solid colour or an image (resized to cover, centre-cropped).
struct Background {
  cv::Scalar bgr{128, 128, 128};  ///< 0..255, used when `image` is empty
  cv::Mat image;                  ///< CV_8UC3, optional
};

/// "#RRGGBB", "#RGB", "R,G,B" (0..255) or a name (white, black, grey/gray, red, green, blue,
/// yellow, cyan, magenta). Returns nullopt when `text` is none of these.
std::optional<cv::Scalar> parse_color(const std::string& text);

/// C = alpha F + (1 - alpha) B as CV_8UC3. `foreground`: CV_32FC3 in [0,1]; `alpha`: CV_32F.
cv::Mat composite(const cv::Mat& foreground, const cv::Mat& alpha, const Background& background);

/// BGRA CV_8UC4: colour from the estimated foreground, alpha channel from alpha.
cv::Mat cutout(const cv::Mat& foreground, const cv::Mat& alpha);

/// The image with alpha tinted in (red at 50% opacity) and the box, if any, drawn in green.
cv::Mat overlay(const cv::Mat& image, const cv::Mat& alpha, const std::optional<Box>& box);

/// Alpha as CV_8U (depth 8) or CV_16U (depth 16), rounded to nearest.
cv::Mat quantize_alpha(const cv::Mat& alpha, int depth);

}  // namespace semat::matting
