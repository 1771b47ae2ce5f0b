#include "semat/matting/trimap.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"

namespace semat::matting {

cv::Mat disc_kernel(int size) {
  const int d = 2 * std::max(0, size / 2) + 1;
  return cv::getStructuringElement(cv::MORPH_ELLIPSE, {d, d});
}

TrimapResult mask_to_trimap(const cv::Mat& mask, const TrimapParams& p) {
  SEMAT_CHECK(mask.type() == CV_8UC1, InvalidArgument, "mask_to_trimap: CV_8UC1 mask expected");
  SEMAT_CHECK(p.eta > 0 && p.min_omega >= 1 && p.dilate_size >= 0, InvalidArgument,
              "mask_to_trimap: eta must be > 0, min_omega >= 1, dilate_size >= 0");
  cv::Mat m = mask > 0;
  SEMAT_CHECK(cv::countNonZero(m) > 0, DataError, "the subject mask is empty: nothing to matte");

  cv::Mat dilated;
  cv::dilate(m, dilated, disc_kernel(p.dilate_size));
  TrimapResult r;
  r.area = cv::countNonZero(dilated);
  r.raw_omega = std::sqrt(static_cast<double>(r.area) / p.eta);

  const cv::Rect bbox = cv::boundingRect(dilated);
  const double upper =
      std::max<double>(p.min_omega, p.max_omega_fraction * std::min(bbox.width, bbox.height));
  double omega = std::clamp(r.raw_omega, static_cast<double>(p.min_omega), upper);

  cv::Mat fg, inv_bg, bg;
  cv::Mat outside = dilated == 0;
  for (;;) {
    const int k = static_cast<int>(std::lround(omega));
    // Erosion must treat pixels beyond the border as "inside" for both masks, otherwise a
    // subject touching the border would get an unknown stripe along it.
    cv::erode(dilated, fg, disc_kernel(k), {-1, -1}, 1, cv::BORDER_CONSTANT, cv::Scalar(255));
    if (cv::countNonZero(fg) > 0 || k <= p.min_omega) {
      cv::erode(outside, bg, disc_kernel(k), {-1, -1}, 1, cv::BORDER_CONSTANT, cv::Scalar(255));
      r.omega = k;
      break;
    }
    omega = std::max<double>(p.min_omega, omega / 2);
  }
  r.trimap = cv::Mat(mask.size(), CV_8U, cv::Scalar(kUnknown));
  r.trimap.setTo(kForeground, fg);
  r.trimap.setTo(kBackground, bg);
  return r;
}

cv::Mat canonical_trimap(const cv::Mat& grey, const std::string& name) {
  SEMAT_CHECK(grey.type() == CV_8UC1, InvalidArgument,
              "trimap '" << name << "' must be an 8-bit single-channel image");
  cv::Mat t(grey.size(), CV_8U, cv::Scalar(kUnknown));
  t.setTo(kBackground, grey < 85);
  t.setTo(kForeground, grey >= 170);
  return t;
}

void check_trimap_usable(const cv::Mat& trimap, const std::string& name) {
  SEMAT_CHECK(cv::countNonZero(trimap == kUnknown) > 0, DataError,
              "trimap '" << name << "' has no unknown (grey, 85..169) pixels: nothing to solve");
  SEMAT_CHECK(cv::countNonZero(trimap == kForeground) > 0, DataError,
              "trimap '" << name << "' has no foreground (white, >= 170) pixels: mark the subject");
}

}  // namespace semat::matting
