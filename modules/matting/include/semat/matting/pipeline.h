// The default, weight-free matting pipeline:
//   box -> GrabCut mask -> mask-to-matte trimap -> closed-form alpha -> foreground colours.
// Every stage can be entered directly: from a mask (e.g. SAM's) or from a user trimap.
#pragma once

#include <optional>

#include <opencv2/core/mat.hpp>

#include "semat/core/geometry.h"
#include "semat/matting/closed_form.h"
#include "semat/matting/coarse_mask.h"
#include "semat/matting/foreground.h"
#include "semat/matting/trimap.h"

namespace semat::matting {

struct MatteOptions {
  GrabCutParams grabcut;
  TrimapParams trimap;
  ClosedFormParams solver;
  ForegroundParams foreground;
  /// With a coarse mask (box or mask entry), the mask, blurred, is a weak prior inside the unknown
  /// band with this weight (ClosedFormParams::prior_weight); 0 gives pure closed-form.
  double mask_prior_weight = 0.005;
  /// Gaussian sigma of that blur, as a fraction of omega.
  double mask_prior_sigma = 0.1;
};

struct MatteResult {
  std::optional<Box> box;
  cv::Mat mask;        ///< CV_8U 0/255 coarse mask; empty when a trimap was given
  cv::Mat trimap;      ///< CV_8U 0/128/255
  cv::Mat alpha;       ///< CV_32F in [0, 1]
  cv::Mat foreground;  ///< CV_32FC3 in [0, 1], the image's channel order
  double omega = 0;    ///< trimap erosion size used (0 with a given trimap)
  SolveStats solve;
  double seconds = 0;  ///< whole pipeline
};

/// `image`: CV_8UC3; `box` inside it.
MatteResult matte_from_box(const cv::Mat& image, const Box& box, const MatteOptions& options = {});

/// `mask`: CV_8U of the image's size, nonzero = subject. `box` is only carried to the result.
MatteResult matte_from_mask(const cv::Mat& image, const cv::Mat& mask, std::optional<Box> box,
                            const MatteOptions& options = {});

/// `trimap`: canonical CV_8U 0/128/255 of the image's size with unknown and foreground pixels.
MatteResult matte_from_trimap(const cv::Mat& image, const cv::Mat& trimap,
                              const MatteOptions& options = {});

}  // namespace semat::matting
