// A coarse subject mask from a box, with no learned weights: GrabCut (Rother, Kolmogorov & Blake
// 2004, OpenCV's implementation) initialised with the box.
#pragma once

#include <opencv2/core/mat.hpp>

#include "semat/core/geometry.h"

namespace semat::matting {

struct GrabCutParams {
  int iterations = 5;
  /// GrabCut runs on a copy whose long side is at most this many pixels (its cost grows with the
  /// pixel count and the trimap band hides the resolution loss); the mask is upsampled back.
  int max_side = 800;
  /// Connected pieces smaller than this fraction of the largest piece are dropped.
  double min_piece_fraction = 0.05;
  /// Enclosed holes smaller than this fraction of the mask's area are filled.
  double max_hole_fraction = 0.01;
};

/// `image`: CV_8UC3. `box` must lie inside the image. Returns CV_8U, 255 = subject, 0 elsewhere,
/// zero outside the box. Throws InvalidArgument when the box leaves no background to learn from,
/// DataError when no subject is found in the box.
cv::Mat grabcut_mask(const cv::Mat& image, const Box& box, const GrabCutParams& params = {});

/// The connected pieces (8-connected) of `mask` (CV_8U, nonzero = subject) whose area is at least
/// `min_fraction` of the largest piece's, as a CV_8U 0/255 mask.
cv::Mat keep_large_pieces(const cv::Mat& mask, double min_fraction);

}  // namespace semat::matting
