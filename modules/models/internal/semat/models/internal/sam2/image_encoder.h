// SAM 2's image encoder (sam2/modeling/backbones/image_encoder.py): the Hiera trunk and the FPN
// neck (keys trunk.*, neck.convs.N.conv.*). The neck's sine position encodings are not built:
// nothing on the image path reads them.
#pragma once

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include "semat/models/internal/sam2/hiera.h"
#include "semat/models/sam2_config.h"

namespace semat::models::sam2 {

/// One lateral of the neck: a module holding `conv` (Conv2d(C -> d_model, 1x1)), as the
/// Python nn.Sequential with one named child.
class FpnLateralImpl : public torch::nn::Module {
 public:
  FpnLateralImpl(int64_t in_channels, int64_t d_model);
  torch::Tensor forward(const torch::Tensor& x) { return conv->forward(x); }
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(FpnLateral);

class FpnNeckImpl : public torch::nn::Module {
 public:
  explicit FpnNeckImpl(const models::FpnNeckConfig& cfg);
  /// `xs`: the trunk's stage outputs, finest first (as Hiera returns them). Returns every level,
  /// finest first, [B, d_model, h_k, w_k]: level k = convs[n - k](xs[k]), plus nearest x2 of level
  /// k + 1 for k in fpn_top_down_levels (not scalped here).
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& xs);

  models::FpnNeckConfig cfg;
  torch::nn::ModuleList convs;  ///< convs[0] takes the coarsest stage
};
TORCH_MODULE(FpnNeck);

struct ImageEncoderOutput {
  std::vector<torch::Tensor> trunk;         ///< stage outputs, finest first (NCHW)
  std::vector<torch::Tensor> backbone_fpn;  ///< neck levels, finest first, after the scalp
  torch::Tensor vision_features;            ///< backbone_fpn.back() [B, d_model, S/16, S/16]
};

class ImageEncoderImpl : public torch::nn::Module {
 public:
  ImageEncoderImpl(const models::HieraConfig& trunk, const models::FpnNeckConfig& neck);
  /// `x`: normalised images [B, 3, S, S]; `extra_embedding` as in Hiera::forward.
  ImageEncoderOutput forward(const torch::Tensor& x, const torch::Tensor& extra_embedding = {});
  /// The neck (and scalp) on given trunk outputs.
  ImageEncoderOutput forward_trunk_outputs(std::vector<torch::Tensor> trunk_out);

  Hiera trunk{nullptr};
  FpnNeck neck{nullptr};
  int64_t scalp;
};
TORCH_MODULE(ImageEncoder);

}  // namespace semat::models::sam2
