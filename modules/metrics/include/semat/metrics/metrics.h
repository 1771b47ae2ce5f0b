// The matting error metrics (SAD, MSE, MAD, Grad, Conn) exactly as the reference evaluation code
// computes them. Alphas are CV_64FC1 in [0, 1] (alpha / 255 in double: the reference compares
// 153/255 against the double threshold 0.6000000000000001, which single precision gets wrong).
// A region is an empty Mat (the whole image) or a CV_8UC1 mask of the same size, nonzero =
// evaluated. The functions here return raw sums; protocol.h applies each protocol's scaling.
#pragma once

#include <cstdint>

#include <opencv2/core/mat.hpp>

namespace semat::metrics {

/// How Conn picks the component Omega_k of B_k = (P >= t_k) & (G >= t_k), 4-connected.
enum class ConnRule {
  /// SEMat / GCA port: argmax of the label histogram *including the background label 0*; ties go
  /// to the lowest label (background first, then foreground in raster order of first pixel).
  kLargestWithBackground,
  /// DIM MATLAB (IndexNet copy): largest foreground component of bwconncomp(., 4); ties go to the
  /// first component in MATLAB's column-major order; an empty B_k leaves l untouched.
  kLargestForeground,
  /// InstMatt BatchMetric (used by IMQ): largest foreground component, ties in raster order; an
  /// empty B_k gives an empty Omega_k, so every still-unset pixel gets t_{k-1}.
  kLargestForegroundEmptyIsNone,
};

/// Number of evaluated pixels: rows * cols for an empty region.
std::int64_t region_size(const cv::Mat& pred, const cv::Mat& region);

/// Sum over the region of |P - G|.
double sum_abs_error(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& region);
/// Sum over the region of (P - G)^2.
double sum_squared_error(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& region);

/// Gx, Gy (CV_64FC1, same size): true 2-D convolution of `x` with the 9x9 derivative-of-Gaussian
/// kernels H_x, H_y (sigma 1.4, Frobenius-normalised), replicated borders.
void gaussian_gradient(const cv::Mat& x, cv::Mat& gx, cv::Mat& gy);

/// The 9x9 kernel H_x (CV_64FC1): H_x[i][j] = g(i - 4) * g'(j - 4) / norm, rows = y. H_y = H_x^T.
cv::Mat gradient_kernel_x();

/// Sum over the region of (|grad P| - |grad G|)^2. With `minmax` each map is first rescaled to
/// [0, 1] by its own min and max over the whole image (MATLAB mat2gray, the DIM definition).
double sum_gradient_error(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& region,
                          bool minmax = false);

/// The connectivity level map l (CV_64FC1): the threshold t_{k-1} at which each pixel first left
/// Omega_k, or 1 where it never did. Exposed for tests of the component rules.
cv::Mat connectivity_levels(const cv::Mat& pred, const cv::Mat& gt, ConnRule rule);

/// Sum over the region of |phi_P - phi_G|, phi_X = 1 - d [d >= 0.15], d = X - l (step 0.1).
double sum_connectivity_error(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& region,
                              ConnRule rule);

}  // namespace semat::metrics
