// The two evaluation protocols: how inputs are prepared, which region counts and how each metric
// is scaled. Alphas are CV_64FC1 in [0, 1]; trimaps CV_8UC1 with 128 = unknown.
#pragma once

#include <string>

#include <opencv2/core/mat.hpp>

namespace semat::metrics {

enum class Protocol {
  /// SEMat's evaluator: whole image at long side 1024, Conn with the background-label quirk.
  kSemat,
  /// Composition-1k / DIM MATLAB: the trimap's unknown region (== 128) at the original size.
  kDim,
};

/// "semat" or "dim".
const char* protocol_name(Protocol p);
/// Parses "semat" or "dim"; throws ConfigError naming the value otherwise.
Protocol parse_protocol(const std::string& name);

/// One image's errors in the reference scalings: sad, grad and conn are sums / 1000, mse and mad
/// are raw means ([0, 1] scale; papers print them x1e3).
struct Scores {
  double sad = 0, mse = 0, mad = 0, grad = 0, conn = 0;
};

/// The size SEMat evaluates at: each side int(side * 1024 / long_side + 0.5).
cv::Size semat_eval_size(cv::Size original);

/// Bilinear resize with half-pixel centres and no antialias, i.e. torch
/// F.interpolate(mode='bilinear', align_corners=False); CV_64FC1 in and out.
cv::Mat resize_bilinear(const cv::Mat& src, cv::Size size);

/// uint8(255 a + 0.5) / 255 for a in [0, 1] (values outside are clamped first), CV_64FC1.
cv::Mat quantize_alpha(const cv::Mat& alpha);

/// The SEMat protocol. `gt` is resized to semat_eval_size(gt.size()) and kept in float; `pred` is
/// resized to that same size (from whatever size it has) and quantised with quantize_alpha.
/// All five metrics over the whole image.
Scores score_semat(const cv::Mat& pred, const cv::Mat& gt);

/// The DIM protocol on the pixels where trimap == 128. Sizes must match, and the trimap must have
/// unknown pixels (DataError naming `name` otherwise). Grad min-max rescales each map (mat2gray).
Scores score_dim(const cv::Mat& pred, const cv::Mat& gt, const cv::Mat& trimap,
                 const std::string& name = "image");

}  // namespace semat::metrics
