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
  /// Closed-form only looks at 3x3 windows, so solving on the crop of the trimap's
  /// non-background part plus this many pixels gives (nearly) the same alpha much faster for
  /// small subjects; outside the crop alpha is 0. Negative: solve on the whole image (the
  /// default, which `semat matte` uses). The dataset builder uses 8.
  int crop_margin = -1;
  /// Weight of a model's alpha as the data prior when it is refined in the band
  /// (refine_in_band).
  double refine_prior_weight = 0.02;
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

/// The weak prior a coarse mask gives closed-form matting: the mask (nonzero = 1) blurred with a
/// Gaussian of sigma max(0.5, sigma_fraction * omega). CV_32F in [0, 1], the mask's size.
cv::Mat mask_prior(const cv::Mat& mask, double omega, double sigma_fraction);

/// Closed-form alpha in `trimap`'s unknown band (plus foreground colours), with the blurred
/// `mask` (may be empty) as the weak prior of MatteOptions; fills r.alpha, r.foreground, r.solve.
/// `trimap`: CV_8U 0/128/255 of the image's size; `omega`: the band width for the prior's blur.
void solve_in_trimap(const cv::Mat& image, const cv::Mat& trimap, const cv::Mat& mask,
                     double omega, const MatteOptions& options, MatteResult& r);

/// A model's alpha (CV_32F [0, 1], the image's size) sharpened by closed-form matting against the
/// full-resolution image inside `trimap`'s unknown band, with the model's alpha as the data prior
/// (MatteOptions::refine_prior_weight); outside the band the model's alpha is kept. Returned
/// unchanged when the trimap has no band or no known foreground/background to solve against.
cv::Mat refine_in_band(const cv::Mat& image, const cv::Mat& alpha, const cv::Mat& trimap,
                       const MatteOptions& options = {}, SolveStats* stats = nullptr);

/// `image`: CV_8UC3; `box` inside it.
MatteResult matte_from_box(const cv::Mat& image, const Box& box, const MatteOptions& options = {});

/// `mask`: CV_8U of the image's size, nonzero = subject. `box` is only carried to the result.
MatteResult matte_from_mask(const cv::Mat& image, const cv::Mat& mask, std::optional<Box> box,
                            const MatteOptions& options = {});

/// `trimap`: canonical CV_8U 0/128/255 of the image's size with unknown and foreground pixels.
MatteResult matte_from_trimap(const cv::Mat& image, const cv::Mat& trimap,
                              const MatteOptions& options = {});

}  // namespace semat::matting
