#include "semat/data/fusion.h"

#include <algorithm>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/matting/trimap.h"

namespace semat::data {

OverlapMode parse_overlap_mode(const std::string& name, const std::string& flag) {
  if (name == "ioa") return OverlapMode::kIoa;
  if (name == "iou") return OverlapMode::kIou;
  throw ConfigError(flag + " '" + name +
                    "' is not a mode: use ioa (intersection over the accessory's box) or iou");
}

const char* overlap_mode_name(OverlapMode mode) {
  return mode == OverlapMode::kIoa ? "ioa" : "iou";
}

std::vector<std::string> default_accessory_names() {
  return {
      "backpack", "umbrella",   "handbag",        "tie",          "suitcase",      "bottle",
      "cup",      "cell phone", "baseball glove", "baseball bat", "tennis racket", "frisbee",
      "skis",     "snowboard",  "skateboard",     "surfboard",    "kite",          "sports ball"};
}

double box_overlap(const Box& a, const Box& p, OverlapMode mode) {
  const double iw = std::min(a.x1, p.x1) - std::max(a.x0, p.x0);
  const double ih = std::min(a.y1, p.y1) - std::max(a.y0, p.y0);
  if (iw <= 0 || ih <= 0) return 0;
  const double inter = iw * ih;
  const double area_a = std::max(0.0, a.width()) * std::max(0.0, a.height());
  const double area_p = std::max(0.0, p.width()) * std::max(0.0, p.height());
  const double denom = mode == OverlapMode::kIoa ? area_a : area_a + area_p - inter;
  return denom > 0 ? std::min(1.0, inter / denom) : 0;
}

std::vector<FusionDecision> assign_accessories(const std::vector<FusionInstance>& persons,
                                               const std::vector<FusionInstance>& accessories,
                                               const FusionParams& params) {
  std::vector<FusionDecision> out(accessories.size());
  const cv::Mat kernel = matting::disc_kernel(params.touch_dilation);
  const int r = kernel.rows / 2;
  for (size_t a = 0; a < accessories.size(); ++a) {
    FusionDecision& d = out[a];
    d.reason = "below_tau";
    const FusionInstance& acc = accessories[a];
    // The dilation only matters near the accessory, so it runs on its padded bounding rect.
    cv::Mat dilated;
    cv::Rect roi;
    bool dilated_ready = false;
    int best_touch = -1;
    for (size_t p = 0; p < persons.size(); ++p) {
      const double ov = box_overlap(acc.box, persons[p].box, params.overlap);
      if (d.person < 0) d.overlap = std::max(d.overlap, ov);
      if (!(ov > params.tau)) continue;
      if (d.person < 0 && d.reason == "below_tau") d.reason = "not_touching";
      if (!dilated_ready) {
        dilated_ready = true;
        const cv::Rect bound = cv::boundingRect(acc.mask);
        if (bound.area() > 0) {
          roi = cv::Rect(bound.x - r, bound.y - r, bound.width + 2 * r, bound.height + 2 * r) &
                cv::Rect(0, 0, acc.mask.cols, acc.mask.rows);
          cv::dilate(acc.mask(roi), dilated, kernel, {-1, -1}, 1, cv::BORDER_CONSTANT, 0);
          // Pixels beyond the ROI edge the dilation could not see are covered because the ROI
          // was padded by the kernel radius (clipped only at the image border).
        }
      }
      if (dilated.empty()) continue;
      cv::Mat both;
      cv::bitwise_and(dilated, persons[p].mask(roi), both);
      const int touch = cv::countNonZero(both);
      if (touch == 0) continue;
      const bool better = d.person < 0 || ov > d.overlap || (ov == d.overlap && touch > best_touch);
      if (better) {
        d.person = static_cast<int>(p);
        d.overlap = ov;
        d.reason = "fused";
        best_touch = touch;
      }
    }
  }
  return out;
}

}  // namespace semat::data
