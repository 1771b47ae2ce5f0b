// SAM 2's image model as one module (sam2/modeling/sam2_base.py SAM2Base, image path only):
// image_encoder, sam_prompt_encoder, sam_mask_decoder and no_mem_embed under their Python names.
// The video modules (memory attention / encoder, object pointers, ...) are not built; the loader
// accepts their checkpoint entries by name and ignores them (build.h).
#pragma once

#include <vector>

#include <torch/nn/module.h>

#include "semat/models/internal/sam/prompt_encoder.h"
#include "semat/models/internal/sam2/image_encoder.h"
#include "semat/models/internal/sam2/mask_decoder.h"
#include "semat/models/sam2_config.h"

namespace semat::models::sam2 {

/// What SAM2ImagePredictor.set_image keeps (its `_features`), plus the raw encoder outputs.
struct Sam2ImageFeatures {
  torch::Tensor image_embed;                 ///< [B, D, S/16, S/16]: FPN level 2 + no_mem_embed
  std::vector<torch::Tensor> high_res_feats;  ///< {conv_s0(FPN 0) [B, D/8, S/4, S/4], conv_s1(FPN 1) [B, D/4, S/8, S/8]}
  ImageEncoderOutput encoder;                ///< trunk stages and FPN levels (after the scalp)
};

class Sam2BaseImpl : public torch::nn::Module {
 public:
  explicit Sam2BaseImpl(const models::Sam2Config& cfg);

  /// SAM2Transforms: images [B, 3, H, W] float RGB in [0, 1] -> squashed to [B, 3, S, S]
  /// (bilinear, antialiased, align_corners=False; the aspect is not kept), ImageNet-normalised.
  torch::Tensor preprocess(const torch::Tensor& images01) const;
  /// forward_image + _prepare_backbone_features + directly_add_no_mem_embed on normalised
  /// [B, 3, S, S] input; `extra_embedding` as in Hiera::forward (SEMat's box-mask stem).
  Sam2ImageFeatures forward_image(const torch::Tensor& x, const torch::Tensor& extra_embedding = {});

  models::Sam2Config cfg;
  ImageEncoder image_encoder{nullptr};
  sam::PromptEncoder sam_prompt_encoder{nullptr};
  MaskDecoder sam_mask_decoder{nullptr};
  torch::Tensor no_mem_embed;  ///< [1, 1, D]
};
TORCH_MODULE(Sam2Base);

}  // namespace semat::models::sam2
