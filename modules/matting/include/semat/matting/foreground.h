// Foreground colour estimation: given the image I and alpha, find F (and B) with
// I = alpha F + (1 - alpha) B that vary smoothly where alpha does, so a cut-out shows the
// subject's own colours at its soft edges instead of a halo of the old background.
#pragma once

#include <opencv2/core/mat.hpp>

namespace semat::matting {

/// Parameters of the multi-level method of Germer, Uelwer, Conrad & Harmeling, "Fast Multi-Level
/// Foreground Estimation" (ICPR 2020).
struct ForegroundParams {
  double regularization = 1e-5;  ///< smoothness weight everywhere
  double gradient_weight = 1.0;  ///< extra smoothness weight proportional to |alpha difference|
  int small_iterations = 10;     ///< Gauss-Seidel sweeps on levels up to small_size
  int big_iterations = 2;        ///< sweeps on the larger levels
  int small_size = 32;
};

struct ForegroundResult {
  cv::Mat foreground;  ///< CV_32FC3 in [0, 1], the image's channel order
  cv::Mat background;  ///< CV_32FC3 in [0, 1]
};

/// `image`: CV_8UC3. `alpha`: CV_32F in [0, 1] of the same size.
ForegroundResult estimate_foreground(const cv::Mat& image, const cv::Mat& alpha,
                                     const ForegroundParams& params = {});

}  // namespace semat::matting
