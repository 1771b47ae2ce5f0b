// A network prompted by boxes (SAM, SEMat; HQ-SAM and SAM 2 next): the engine's one extension
// point for backbones. A new backbone is one BoxModel implementation plus one line in the model
// table of modules/engine/src/models.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "semat/core/channel_order.h"
#include "semat/core/geometry.h"

namespace semat::engine {

/// One box's output. Sizes are the image's. Models fill what they make.
struct ModelOutput {
  cv::Mat mask;    ///< CV_8U 0/255 coarse mask (required)
  cv::Mat trimap;  ///< CV_8U 0/128/255, when trimaps() is true
  cv::Mat alpha;   ///< CV_32F in [0, 1], when alphas() is true
  /// CV_32F in [0, 1], optional: a soft prior for closed-form in the trimap's band (the learned
  /// prior's probability where it agrees with the mask), used instead of the blurred mask.
  cv::Mat hint;
};

class BoxModel {
 public:
  virtual ~BoxModel() = default;
  /// Short name used in the engine's description, e.g. "sam" or "semat".
  virtual std::string name() const = 0;
  /// The architecture actually loaded, e.g. "semat-hq-vit-l" or "vit_b" (checkpoints of one
  /// family differ in backbone and size); name() when there is nothing more to say.
  virtual std::string variant() const { return name(); }
  /// What the network's encoder runs in: "fp32" or "bf16" (EngineSpec::precision, resolved).
  virtual std::string precision() const { return "fp32"; }
  virtual bool trimaps() const { return false; }
  virtual bool alphas() const { return false; }
  /// One output per box, in order. `image`: CV_8UC3 in `order` (BGR unless the caller holds
  /// RGB pixels; a network reads either without a conversion copy of RGB, and the order must not
  /// change what a model sees); boxes already checked to lie inside.
  /// `image_key` names a stored image across calls so per-image work (an embedding) can be
  /// reused; empty for one-shot images, which must not be cached. Must be safe to call from
  /// several threads (implementations serialise on their one model copy). Implementations
  /// declare `order` without a default (calls through BoxModel get kBGR).
  virtual std::vector<ModelOutput> predict(const cv::Mat& image, const std::string& image_key,
                                           const std::vector<Box>& boxes,
                                           ChannelOrder order = ChannelOrder::kBGR) = 0;
  /// Drops anything cached for `image_key`.
  virtual void forget(const std::string& image_key) {}
};

}  // namespace semat::engine
