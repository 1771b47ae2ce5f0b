// SEMat's Matte-Aligned Decoder (mask_decoder_hq_matting.py MaskDecoderHQMatting with wo_hq=True,
// mask_matting_res_add=False): SAM's mask decoder plus matting tokens and the matting adapter.
// It extends sam::MaskDecoderImpl, so the SAM parts keep their names (mask_decoder.transformer...)
// and the new ones sit beside them (mask_decoder.matting_*).
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>

#include "semat/models/internal/sam/mask_decoder.h"

namespace semat::models::semat_net {

struct MattingDecoderOutput {
  torch::Tensor masks_sam;      ///< [B, 1, 4g, 4g] best of the 3 multimask logits by predicted IoU
  torch::Tensor masks_matting;  ///< [B, T, 4g, 4g] matting-token logits (T = 3: bg/unknown/fg)
  torch::Tensor masks_all;      ///< [B, 4, 4g, 4g] all SAM mask-token logits
  torch::Tensor iou_pred;       ///< [B, 4] iou_prediction_head output
};

class MaskDecoderHQMattingImpl : public sam::MaskDecoderImpl {
 public:
  /// `vit_dim`: the image encoder's embed dim (input of matting_compress_vit_feat).
  MaskDecoderHQMattingImpl(const models::MaskDecoderConfig& cfg, int64_t vit_dim,
                           int64_t matting_tokens);
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
