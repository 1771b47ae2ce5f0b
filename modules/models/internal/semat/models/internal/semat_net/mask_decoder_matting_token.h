// SEMat (SAM2)'s Matte-Aligned Decoder (SEMat's sam2/modeling/sam/mask_decoder.py
// MaskDecoderMattingToken, as SEMat_SAM2.py builds it: 3 matting tokens,
// upscaled_embedding_res_add = matting_logits_res_add = False). It extends SAM 2's mask decoder
// (sam2::MaskDecoderImpl: obj-score token first, high-res skips conv_s0 / conv_s1), so the SAM 2
// parts keep their names (sam_mask_decoder.transformer..., conv_s0...) and the new ones sit beside
// them: the matting tokens after the mask tokens, one hypernetwork MLP per matting token, and
// their own copy of the upscaling path.
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>

#include "semat/models/internal/sam2/mask_decoder.h"

namespace semat::models::semat_net {

struct Sam2MattingDecoderOutput {
  torch::Tensor masks_all;      ///< [B, 4, 4g, 4g] the 4 SAM 2 mask tokens' logits
  torch::Tensor masks_sam;      ///< [B, 1, 4g, 4g] mask token 0 (no IoU selection, no gating)
  torch::Tensor masks_matting;  ///< [B, T, 4g, 4g] raw matting-token logits (bg, unknown, fg)
};

class MaskDecoderMattingTokenImpl : public sam2::MaskDecoderImpl {
 public:
  MaskDecoderMattingTokenImpl(const models::Sam2MaskDecoderConfig& cfg, int64_t matting_tokens);

  /// conv_s0 / conv_s1 of the FPN levels 0 [B, D, 4g, 4g] and 1 [B, D, 2g, 2g] -> the high-res
  /// features [B, D/8, 4g, 4g] and [B, D/4, 2g, 2g] (SAM2Base.forward_image).
  std::pair<torch::Tensor, torch::Tensor> high_res_features(const torch::Tensor& fpn0,
                                                            const torch::Tensor& fpn1);
  /// image_embed [B, D, g, g] (with no_mem_embed), image_pe [1, D, g, g], sparse [B, N, D],
  /// dense [B, D, g, g], feat_s0 / feat_s1 from high_res_features(). One image per prompt set
  /// (repeat_image=False). `with_matting_tokens` false: the plain SAM 2 decoder (the matting
  /// tokens left out of the sequence, masks_matting undefined), the training regulariser's
  /// target (get_frozen_sam_logits, wo_matting_token=True). The iou and obj-score heads run
  /// (SAM 2's predict_masks) but SEMat reads neither.
  Sam2MattingDecoderOutput forward_matting(const torch::Tensor& image_embed,
                                           const torch::Tensor& image_pe, const torch::Tensor& sparse,
                                           const torch::Tensor& dense, const torch::Tensor& feat_s0,
                                           const torch::Tensor& feat_s1,
                                           bool with_matting_tokens = true);

  torch::nn::Embedding matting_mask_tokens{nullptr};
  torch::nn::ModuleList matting_output_hypernetworks_mlps;
  torch::nn::Sequential matting_output_upscaling{nullptr};  ///< output_upscaling's layout
  int64_t matting_token_num;
};
TORCH_MODULE(MaskDecoderMattingToken);

}  // namespace semat::models::semat_net
