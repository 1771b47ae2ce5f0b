// Trimaps: CV_8U images holding exactly kBackground (0), kUnknown (128) or kForeground (255).
#pragma once

#include <string>

#include <opencv2/core/mat.hpp>

namespace semat::matting {

constexpr unsigned char kBackground = 0;
constexpr unsigned char kUnknown = 128;
constexpr unsigned char kForeground = 255;

/// The mask-to-matte trimap rule of the COCO-Matting paper:
///   M' = dilate(M, dilate_size);  omega = sqrt(sum(M') / eta);
///   foreground = erode(M', omega);  background = erode(1 - M', omega);  the rest unknown.
/// A "kernel of size k" is a disc of diameter k: cv::MORPH_ELLIPSE of (2*floor(k/2)+1)^2 pixels,
/// odd so that it is centred. Eroding with diameter omega moves each edge by about omega/2, so
/// the unknown band around the mask's edge is about omega pixels wide.
struct TrimapParams {
  int dilate_size = 4;  ///< kernel size of the first dilation, pixels
  double eta = 12.0;    ///< area divisor in omega = sqrt(area / eta)
  /// omega is clamped to [min_omega, max(min_omega, max_omega_fraction * min(bbox w, bbox h))]
  /// of the dilated mask, so tiny masks keep a band and thin ones keep a foreground core.
  int min_omega = 3;
  double max_omega_fraction = 0.5;
};

struct TrimapResult {
  cv::Mat trimap;         ///< CV_8U, same size as the mask, values 0/128/255
  double omega = 0;       ///< the erosion kernel size actually used, pixels
  double raw_omega = 0;   ///< sqrt(area / eta) before clamping
  long long area = 0;     ///< sum(M') in pixels
};

/// `mask` is CV_8U, nonzero = subject. Throws DataError when the mask is empty. If eroding by
/// the clamped omega would remove the whole foreground, omega is halved until some remains.
TrimapResult mask_to_trimap(const cv::Mat& mask, const TrimapParams& params = {});

/// Morphological kernel for "size k" as described above.
cv::Mat disc_kernel(int size);

/// Turns a user trimap (CV_8U grey, any encoder) into canonical values: < 85 background,
/// >= 170 foreground, else unknown. `name` is used in errors.
cv::Mat canonical_trimap(const cv::Mat& grey, const std::string& name);

/// Throws DataError naming `name` when the trimap has no unknown or no foreground pixels.
void check_trimap_usable(const cv::Mat& trimap, const std::string& name);

}  // namespace semat::matting
