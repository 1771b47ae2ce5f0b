// SEMat (SAM2)'s Matte-Aligned Decoder (sam2/modeling/sam/mask_decoder.py MaskDecoderMattingToken,
// as SEMat_SAM2.py builds it: use_high_res_features, pred_obj_scores, 3 matting tokens,
// upscaled_embedding_res_add = matting_logits_res_add = False). SAM 2's mask decoder (two-way
// transformer with mlp.layers.{0,1} names, obj-score token first, the high-resolution skips
// conv_s0 / conv_s1) plus matting tokens, their own hypernetwork MLP each and their own copy of
// the upscaling path. Names follow the official state_dict under sam_model.sam_mask_decoder.*.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>

#include "semat/models/internal/sam/common.h"
#include "semat/models/internal/sam/transformer.h"
#include "semat/models/sam_config.h"

namespace semat::models::semat_net {

struct Sam2MattingDecoderOutput {
  torch::Tensor masks_all;      ///< [B, 4, 4g, 4g] the 4 SAM 2 mask tokens' logits
  torch::Tensor masks_sam;      ///< [B, 1, 4g, 4g] mask token 0 (no IoU selection, no gating)
  torch::Tensor masks_matting;  ///< [B, T, 4g, 4g] raw matting-token logits (bg, unknown, fg)
};

class MaskDecoderMattingTokenImpl : public torch::nn::Module {
 public:
  /// `cfg.transformer_dim` = D; the iou head (hidden cfg.iou_head_hidden_dim) and the obj-score
  /// head are built for the checkpoint but not evaluated (SEMat never reads them).
  MaskDecoderMattingTokenImpl(const models::MaskDecoderConfig& cfg, int64_t matting_tokens);

  /// conv_s0 / conv_s1 of the FPN levels 0 [B, D, 4g, 4g] and 1 [B, D, 2g, 2g] -> the high-res
  /// features [B, D/8, 4g, 4g] and [B, D/4, 2g, 2g] (SAM2Base.forward_image).
  std::pair<torch::Tensor, torch::Tensor> high_res_features(const torch::Tensor& fpn0,
                                                            const torch::Tensor& fpn1);
  /// image_embed [B, D, g, g] (with no_mem_embed), image_pe [1, D, g, g], sparse [B, N, D],
  /// dense [B, D, g, g], feat_s0 / feat_s1 from high_res_features(). One image per prompt set
  /// (repeat_image=False). `with_matting_tokens` false: the plain SAM 2 decoder (the matting
  /// tokens left out of the sequence, masks_matting undefined), the training regulariser's
  /// target (get_frozen_sam_logits, wo_matting_token=True).
  Sam2MattingDecoderOutput forward(const torch::Tensor& image_embed, const torch::Tensor& image_pe,
                                   const torch::Tensor& sparse, const torch::Tensor& dense,
                                   const torch::Tensor& feat_s0, const torch::Tensor& feat_s1,
                                   bool with_matting_tokens = true);

  sam::TwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr}, mask_tokens{nullptr}, obj_score_token{nullptr},
      matting_mask_tokens{nullptr};
  /// ConvT(D -> D/4), LayerNorm2d, GELU, ConvT(D/4 -> D/8), GELU (keys .0 .1 .3); the matting
  /// copy has the same layout.
  torch::nn::Sequential output_upscaling{nullptr}, matting_output_upscaling{nullptr};
  torch::nn::Conv2d conv_s0{nullptr}, conv_s1{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps, matting_output_hypernetworks_mlps;
  sam::MLP iou_prediction_head{nullptr}, pred_obj_score_head{nullptr};
  int64_t num_mask_tokens, matting_token_num;
};
TORCH_MODULE(MaskDecoderMattingToken);

}  // namespace semat::models::semat_net
