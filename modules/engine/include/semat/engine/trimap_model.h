// A network that turns an image and a trimap into alpha (ViTMatte; DiffMatte next): the engine's
// extension point for the alpha stage, as BoxModel is for the mask stage.
#pragma once

#include <string>

#include <opencv2/core/mat.hpp>

#include "semat/core/channel_order.h"

namespace semat::engine {

class TrimapModel {
 public:
  virtual ~TrimapModel() = default;
  /// Short name used in the engine's description, e.g. "vitmatte".
  virtual std::string name() const = 0;
  /// `image`: CV_8UC3 in `order` (BGR unless the caller holds RGB pixels); `trimap`: CV_8U of its size (0 / 128 / 255, other grey levels pass
  /// through as the network's input). Returns the network's raw alpha, CV_32F in [0, 1] at the
  /// image's size; `*scale` (< 1) when the network ran on a shrunk copy (large images), else 1.
  /// Safe to call from several threads (implementations serialise on their one model copy).
  /// Implementations declare `order` without a default (calls through TrimapModel get kBGR).
  virtual cv::Mat predict(const cv::Mat& image, const cv::Mat& trimap, double* scale,
                          ChannelOrder order = ChannelOrder::kBGR) = 0;
};

}  // namespace semat::engine
