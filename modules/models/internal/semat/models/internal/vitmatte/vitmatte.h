// ViTMatte (modeling/meta_arch/vitmatte.py): trimap-based matting. Keys as the official
// checkpoint: backbone.*, decoder.* (pixel_mean / pixel_std are not persistent).
#pragma once

#include <torch/nn/module.h>

#include "semat/models/internal/vitmatte/detail_capture.h"
#include "semat/models/internal/vitmatte/vit.h"
#include "semat/models/vitmatte_config.h"

namespace semat::models::vitmatte {

struct VitMatteTrace {
  torch::Tensor input;  ///< [B, 4, Hp, Wp] preprocess() output
  torch::Tensor features;
  VitTrace vit;
  DecoderTrace decoder;
};

class VitMatteImpl : public torch::nn::Module {
 public:
  explicit VitMatteImpl(const VitMatteConfig& cfg);

  /// The official preprocess_inputs: `rgb` [B, 3, H, W] in [0, 1] (8-bit / 255), `trimap`
  /// [B, 1, H, W] in [0, 1] (8-bit grey / 255, not quantised) -> cat(normalised rgb, trimap),
  /// zero-padded at the bottom/right to padded_size() (the official +32 rule).
  torch::Tensor preprocess(const torch::Tensor& rgb, const torch::Tensor& trimap) const;
  /// Official rule: when H or W is not a multiple of 32, BOTH grow by 32 - side % 32 (a side
  /// already a multiple grows by a full 32); else unchanged.
  static std::pair<int64_t, int64_t> padded_size(int64_t H, int64_t W);
  /// Alpha logits [B, 1, Hp, Wp] of a preprocessed input.
  torch::Tensor logits(const torch::Tensor& input, VitMatteTrace* trace = nullptr);
  /// preprocess, network, sigmoid, crop: alpha [B, 1, H, W] in [0, 1], the official `phas`.
  torch::Tensor forward(const torch::Tensor& rgb, const torch::Tensor& trimap,
                        VitMatteTrace* trace = nullptr);

  VitMatteConfig cfg;
  ViT backbone{nullptr};
  DetailCapture decoder{nullptr};
};
TORCH_MODULE(VitMatte);

}  // namespace semat::models::vitmatte
