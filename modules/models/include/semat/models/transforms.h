// SAM's input geometry, torch-free: the longest-side resize (bit-exact with the PIL resampler the
// official predictor uses) and the matching coordinate transforms.
#pragma once

#include <opencv2/core/mat.hpp>

#include "semat/core/channel_order.h"

namespace semat::models {

/// Size after resizing the longest side of an (h, w) image to `long_side`, rounded as
/// segment-anything's ResizeLongestSide.get_preprocess_shape does (int(x + 0.5)).
cv::Size preprocess_size(int height, int width, int long_side);

/// Bilinear resize of a CV_8UC1/3/4 image that reproduces Pillow's Image.resize(BILINEAR)
/// bit for bit: a triangle filter widened by the scale factor when shrinking (antialiasing),
/// fixed-point weights with 22 fractional bits, a horizontal pass rounded to 8 bits, then a
/// vertical pass.
cv::Mat pil_resize_bilinear(const cv::Mat& image, cv::Size size);

/// A CV_8UC3 image in `order` as RGB, the order every network here takes: `image` itself (a
/// header over the caller's pixels, no copy; rows may be padded) when it already is RGB, else a
/// new continuous BGR->RGB copy.
cv::Mat rgb_of(const cv::Mat& image, ChannelOrder order);

}  // namespace semat::models
