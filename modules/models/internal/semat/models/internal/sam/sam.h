// SAM or HQ-SAM as one module (segment_anything/modeling/sam.py): the three parts under their Python names
// plus pixel normalisation and mask post-processing.
#pragma once

#include <torch/nn/module.h>

#include "semat/models/internal/sam/image_encoder.h"
#include "semat/models/internal/sam/mask_decoder.h"
#include "semat/models/internal/sam/mask_decoder_hq.h"
#include "semat/models/internal/sam/prompt_encoder.h"
#include "semat/models/sam_config.h"

namespace semat::models::sam {

class SamImpl : public torch::nn::Module {
 public:
  explicit SamImpl(const models::SamConfig& cfg);

  /// [B, 3, h, w] RGB in 0..255 (h, w <= img_size) -> normalised and zero-padded to
  /// [B, 3, img_size, img_size].
  torch::Tensor preprocess(const torch::Tensor& x) const;
  /// [B, M, 4g, 4g] logits -> [B, M, H, W] at the original size: upsample to img_size, crop the
  /// resized image's (h, w), upsample to (H, W); bilinear, align_corners=false.
  torch::Tensor postprocess_masks(const torch::Tensor& masks, int64_t input_h, int64_t input_w,
                                  int64_t original_h, int64_t original_w) const;

  models::SamConfig cfg;
  ImageEncoderViT image_encoder{nullptr};
  PromptEncoder prompt_encoder{nullptr};
  MaskDecoder mask_decoder{nullptr};
  /// HQ-SAM (cfg.hq): the same module as mask_decoder, with its HQ parts; null for SAM.
  MaskDecoderHQ mask_decoder_hq{nullptr};
  torch::Tensor pixel_mean, pixel_std;  ///< [3, 1, 1]; not registered: not in checkpoints
};
TORCH_MODULE(Sam);

}  // namespace semat::models::sam
