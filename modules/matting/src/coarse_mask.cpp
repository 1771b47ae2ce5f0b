#include "semat/matting/coarse_mask.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/core/log.h"

namespace semat::matting {
namespace {

// GrabCut punches holes where a subject's colours resemble the background (badges, logos).
// Background pieces enclosed by the subject and smaller than `max_fraction` of its area are
// filled; larger enclosed regions (the gap between an arm and the body) are kept.
cv::Mat fill_small_holes(const cv::Mat& mask, double max_fraction) {
  cv::Mat labels, stats, centroids;
  const cv::Mat holes = mask == 0;
  const int n = cv::connectedComponentsWithStats(holes, labels, stats, centroids, 4, CV_32S);
  const double limit = max_fraction * cv::countNonZero(mask);
  cv::Mat out = mask.clone();
  for (int i = 1; i < n; ++i) {
    const int x = stats.at<int>(i, cv::CC_STAT_LEFT), y = stats.at<int>(i, cv::CC_STAT_TOP);
    const int w = stats.at<int>(i, cv::CC_STAT_WIDTH), h = stats.at<int>(i, cv::CC_STAT_HEIGHT);
    const bool touches_border = x == 0 || y == 0 || x + w == mask.cols || y + h == mask.rows;
    if (!touches_border && stats.at<int>(i, cv::CC_STAT_AREA) < limit) out.setTo(255, labels == i);
  }
  return out;
}

}  // namespace

cv::Mat keep_large_pieces(const cv::Mat& mask, double min_fraction) {
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
  int largest = 0;
  for (int i = 1; i < n; ++i) largest = std::max(largest, stats.at<int>(i, cv::CC_STAT_AREA));
  cv::Mat out = cv::Mat::zeros(mask.size(), CV_8U);
  for (int i = 1; i < n; ++i)
    if (stats.at<int>(i, cv::CC_STAT_AREA) >= min_fraction * largest) out.setTo(255, labels == i);
  return out;
}

cv::Mat grabcut_mask(const cv::Mat& image, const Box& box, const GrabCutParams& p) {
  SEMAT_CHECK(image.type() == CV_8UC3, InvalidArgument, "grabcut_mask: CV_8UC3 image expected");
  check_box_in_image(box, image.cols, image.rows);
  const cv::Rect full_rect = box.pixel_rect() & cv::Rect(0, 0, image.cols, image.rows);

  const double scale = std::min(1.0, static_cast<double>(p.max_side) / std::max(image.cols, image.rows));
  cv::Mat work = image;
  cv::Rect rect = full_rect;
  if (scale < 1.0) {
    cv::resize(image, work, {}, scale, scale, cv::INTER_AREA);
    const int x0 = static_cast<int>(std::floor(box.x0 * scale));
    const int y0 = static_cast<int>(std::floor(box.y0 * scale));
    const int x1 = static_cast<int>(std::ceil(box.x1 * scale));
    const int y1 = static_cast<int>(std::ceil(box.y1 * scale));
    rect = cv::Rect(x0, y0, x1 - x0, y1 - y0) & cv::Rect(0, 0, work.cols, work.rows);
  }
  cv::Mat gc(work.size(), CV_8U, cv::Scalar(cv::GC_BGD)), bgd, fgd;
  // GrabCut learns the background from outside the box. When the box leaves (almost) nothing
  // outside, as for a subject filling the frame, a thin frame inside the box is taken as
  // background instead. Only GrabCut's mask is forced there: the trimap's unknown band still
  // covers the frame next to the subject, so the matting solve decides its alpha.
  const bool fills_image = rect.area() > 0.98 * work.total();
  int mode = cv::GC_INIT_WITH_RECT;
  if (fills_image) {
    const int f = std::max(2, static_cast<int>(std::lround(0.03 * std::min(rect.width, rect.height))));
    SEMAT_CHECK(rect.width > 2 * f + 2 && rect.height > 2 * f + 2, InvalidArgument,
                "box (" << box.str() << ") is too small for GrabCut: draw a larger box");
    gc(rect).setTo(cv::GC_BGD);
    gc(cv::Rect(rect.x + f, rect.y + f, rect.width - 2 * f, rect.height - 2 * f)).setTo(cv::GC_PR_FGD);
    mode = cv::GC_INIT_WITH_MASK;
    SEMAT_LOG_WARN("grabcut", "box (" << box.str() << ") covers almost the whole image: a " << f
                                      << " px frame inside it is taken as background");
  }
  // GrabCut seeds its colour models with k-means on the calling thread's cv::theRNG(), whose
  // state depends on what that thread ran before; a fixed seed makes the mask reproducible.
  cv::theRNG().state = 0x5e3a7u;
  try {
    cv::grabCut(work, gc, rect, bgd, fgd, p.iterations, mode);
  } catch (const cv::Exception& e) {
    throw InvalidArgument("GrabCut failed for box (" + box.str() + "): " + e.err +
                          " (draw a box with background around the subject, or give a --trimap)");
  }
  cv::Mat mask = (gc == cv::GC_FGD) | (gc == cv::GC_PR_FGD);
  if (scale < 1.0) {
    cv::Mat up;
    cv::resize(mask, up, image.size(), 0, 0, cv::INTER_LINEAR);
    mask = up >= 128;
  }
  cv::Mat inside = cv::Mat::zeros(mask.size(), CV_8U);
  inside(full_rect).setTo(255);
  mask &= inside;
  SEMAT_CHECK(cv::countNonZero(mask) > 0, DataError,
              "no subject found inside box (" << box.str()
                                              << "): draw the box tighter around the subject");
  return fill_small_holes(keep_large_pieces(mask, p.min_piece_fraction), p.max_hole_fraction);
}

}  // namespace semat::matting
