// Accessory fusion (COCO-Matting, step 1): things a person wears or carries (a tie, a bag, a
// bottle in the hand) belong to the person's matte, so their masks are merged into the person's.
#pragma once

#include <cstdint>
#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

#include "semat/core/geometry.h"

namespace semat::data {

/// How an accessory's box is compared with a person's box.
///   kIoa: intersection / area of the accessory's box (default). The paper's own example (a tie
///         and a bottle fused into a woman) cannot pass a plain IoU, whose value is bounded by
///         the small box's area over the big one's.
///   kIou: intersection / union, the paper's literal wording.
enum class OverlapMode { kIoa, kIou };

/// "ioa" or "iou"; throws ConfigError naming `flag` otherwise.
OverlapMode parse_overlap_mode(const std::string& name, const std::string& flag = "--overlap");
const char* overlap_mode_name(OverlapMode mode);

struct FusionParams {
  double tau = 0.8;  ///< the box overlap must exceed this, in [0, 1]
  OverlapMode overlap = OverlapMode::kIoa;
  /// The accessory mask dilated by a disc of this size (matting::disc_kernel) must touch the
  /// person mask, which rejects e.g. a ball far behind a person whose box happens to contain it.
  int touch_dilation = 4;
};

/// The default accessory categories: COCO's "accessory" supercategory (backpack, umbrella,
/// handbag, tie, suitcase) plus things commonly carried or worn in COCO photos.
std::vector<std::string> default_accessory_names();

/// Overlap of two XYXY boxes by `mode`, in [0, 1]; 0 for empty boxes.
double box_overlap(const Box& accessory, const Box& person, OverlapMode mode);

/// One instance taking part in fusion. `mask` is CV_8U (nonzero = inside), the image's size.
struct FusionInstance {
  std::int64_t id = 0;
  Box box;
  cv::Mat mask;
};

/// Why an accessory was or was not fused, for logging and tests.
struct FusionDecision {
  int person = -1;     ///< index into `persons`, -1 when not fused
  double overlap = 0;  ///< box overlap with that person (or the best one seen)
  std::string reason;  ///< "fused", "below_tau" or "not_touching"
};

/// Assigns each accessory to at most one person: among the people whose box overlap exceeds tau
/// and whose mask the dilated accessory mask touches, the one with the largest overlap (ties:
/// more touching pixels, then the earlier person). Returns one decision per accessory.
std::vector<FusionDecision> assign_accessories(const std::vector<FusionInstance>& persons,
                                               const std::vector<FusionInstance>& accessories,
                                               const FusionParams& params = {});

}  // namespace semat::data
