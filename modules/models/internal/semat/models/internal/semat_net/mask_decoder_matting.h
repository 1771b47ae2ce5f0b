// SEMat's Matte-Aligned Decoder (mask_decoder_hq_matting.py MaskDecoderHQMatting): SAM's mask
// decoder plus matting tokens and the matting adapter. With wo_hq=True (SEMat_SAM) there is no
// HQ part; with wo_hq=False (SEMat_HQ-SAM) HQ-SAM's frozen HQ token and fusion layers are built
// too and the matting logits become a residual on the HQ token's (mask_matting_res_add is then
// ignored, hq_token_only is True). It extends sam::MaskDecoderHQImpl, so the SAM and HQ parts
// keep their names (mask_decoder.transformer..., mask_decoder.hf_token...) and the new ones sit
// beside them (mask_decoder.matting_*).
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>

#include "semat/models/internal/sam/mask_decoder_hq.h"

namespace semat::models::semat_net {

struct MattingDecoderOutput {
  torch::Tensor masks_sam;      ///< [B, 1, 4g, 4g] best of the 3 multimask logits by predicted IoU
  torch::Tensor masks_matting;  ///< [B, T, 4g, 4g] matting logits (T = 3: bg/unknown/fg); for
                                ///< the HQ variant the matting tokens' logits + masks_hq
  torch::Tensor masks_all;      ///< [B, 4, 4g, 4g] all SAM mask-token logits
  torch::Tensor iou_pred;       ///< [B, 4] iou_prediction_head output
  /// [1 or B, E/8, 4g, 4g] matting_embedding_encoder(emb) + matting_compress_vit_feat(interm0)
  torch::Tensor matting_hq_features;
  // HQ variant only (undefined otherwise):
  torch::Tensor masks_hq;              ///< [B, 1, 4g, 4g] the HQ token's logits
  torch::Tensor matting_token_logits;  ///< [B, T, 4g, 4g] the matting tokens' own logits
  torch::Tensor hq_features;           ///< [1 or B, E/8, 4g, 4g] HQ-SAM global-local fusion
};

class MaskDecoderHQMattingImpl : public sam::MaskDecoderHQImpl {
 public:
  /// `vit_dim`: the image encoder's embed dim (input of [matting_]compress_vit_feat).
  /// `with_hq`: the HQ-SAM variant (wo_hq=False).
  MaskDecoderHQMattingImpl(const models::MaskDecoderConfig& cfg, int64_t vit_dim,
                           int64_t matting_tokens, bool with_hq = false);
  /// image_embeddings [B, E, g, g] and sparse [B, N, E] (one image per prompt set), image_pe
  /// [1, E, g, g], dense [B, E, g, g], interm0 [B, g, g, D] (first global block, channel-last).
  MattingDecoderOutput forward_matting(const torch::Tensor& image_embeddings,
                                       const torch::Tensor& image_pe, const torch::Tensor& sparse,
                                       const torch::Tensor& dense, const torch::Tensor& interm0,
                                       bool multimask_output = true);

  torch::nn::Embedding matting_hf_token{nullptr};
  sam::MLP matting_hf_mlp{nullptr};  ///< shared by every matting token
  torch::nn::Sequential matting_compress_vit_feat{nullptr}, matting_embedding_encoder{nullptr},
      matting_embedding_maskfeature{nullptr};
  int64_t matting_token_num;
};
TORCH_MODULE(MaskDecoderHQMatting);

}  // namespace semat::models::semat_net
