// The learned prior as a coarse-mask stage: a network that maps an image crop to the probability
// that each pixel belongs to the salient subject (IS-Net), wrapped into a BoxModel that runs it
// on each box's crop plus a margin and fuses the map with the box and a colour model
// (semat/matting/learned_prior.h). The engine loads it as the model "isnet" (--prior isnet, or
// --prior auto when the model is installed).
#pragma once

#include <memory>
#include <string>

#include <opencv2/core/mat.hpp>

#include "semat/engine/box_model.h"
#include "semat/matting/learned_prior.h"

namespace semat::engine {

class ProbabilityModel {
 public:
  virtual ~ProbabilityModel() = default;
  /// Short name, e.g. "isnet"; the box model built on it takes this name.
  virtual std::string name() const = 0;
  /// What the network runs in: "fp32" or "bf16".
  virtual std::string precision() const { return "fp32"; }
  /// `crop`: CV_8UC3 in `order` (BGR unless the caller holds RGB pixels), any size. Returns
  /// CV_32F in [0, 1] of crop.size(): the probability of each pixel being subject, the same for
  /// either order of one picture. Must be safe to call from several threads. Implementations
  /// declare `order` without a default (calls through ProbabilityModel get kBGR).
  virtual cv::Mat probability(const cv::Mat& crop, ChannelOrder order = ChannelOrder::kBGR) = 0;
};

/// A BoxModel whose outputs carry the fused mask, the band trimap (trimaps() is true) and the
/// closed-form hint (ModelOutput::hint); it makes no alpha.
std::shared_ptr<BoxModel> make_prior_box_model(std::shared_ptr<ProbabilityModel> model,
                                               const matting::LearnedPriorParams& params = {});

}  // namespace semat::engine
