// HQ-SAM's mask decoder (SysCV/sam-hq segment_anything/modeling/mask_decoder_hq.py): SAM's mask
// decoder plus one HQ output token whose mask is computed on fused features, the SAM decoder's
// upscaled embedding refined by embedding_maskfeature plus the "global-local" features of the
// image embedding (embedding_encoder) and the first global ViT block's output
// (compress_vit_feat). The SAM parts keep their names (mask_decoder.transformer...), the HQ parts
// sit beside them (mask_decoder.hf_token, hf_mlp, compress_vit_feat, embedding_encoder,
// embedding_maskfeature), as in sam_hq_vit_*.pth.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>

#include "semat/models/internal/sam/mask_decoder.h"

namespace semat::models::sam {

/// The fusion layers of HQ-SAM, also copied by SEMat's matting adapter (matting_*):
/// compress_vit_feat: ConvT(vit_dim -> d, k2 s2), LayerNorm2d, GELU, ConvT(d -> d/8, k2 s2);
/// embedding_encoder: ConvT(d -> d/4, k2 s2), LayerNorm2d, GELU, ConvT(d/4 -> d/8, k2 s2);
/// embedding_maskfeature: Conv3x3(d/8 -> d/4), LayerNorm2d, GELU, Conv3x3(d/4 -> d/8).
/// Keys .0, .1 and .3 (GELU at .2 has none).
torch::nn::Sequential compress_vit_feat_layers(int64_t vit_dim, int64_t d);
torch::nn::Sequential embedding_encoder_layers(int64_t d);
torch::nn::Sequential embedding_maskfeature_layers(int64_t d);
/// compress_vit_feat / embedding_encoder on [B, C, g, g] -> [B, d/8, 4g, 4g], with the
/// transposed convolutions as GEMMs (the same numbers as seq->forward(x)).
torch::Tensor run_upscaling_fusion(torch::nn::Sequential seq, const torch::Tensor& x);

/// Everything HQ-SAM's decoder computes for one prompt batch.
struct HQDecoderOutput {
  torch::Tensor masks;          ///< [B, 1, 4g, 4g] the predictor's output: masks_hq when
                                ///< hq_token_only, else masks_sam + masks_hq
  torch::Tensor iou_pred;       ///< [B, 1] the selected SAM token's predicted IoU
  torch::Tensor masks_all;      ///< [B, 5, 4g, 4g] SAM mask tokens 0..3 and the HQ token
  torch::Tensor iou_all;        ///< [B, 4] iou head output for the 4 SAM tokens
  torch::Tensor hq_features;    ///< [1 or B, d/8, 4g, 4g] embedding_encoder + compress_vit_feat
  torch::Tensor upscaled_sam;   ///< [B, d/8, 4g, 4g] output_upscaling(image tokens)
};

class MaskDecoderHQImpl : public MaskDecoderImpl {
 public:
  /// `vit_dim`: the image encoder's embed dim. `with_hq` false builds no HQ part (SEMat's
  /// MaskDecoderHQMatting with wo_hq=True, the SAM variant): a plain SAM decoder.
  MaskDecoderHQImpl(const models::MaskDecoderConfig& cfg, int64_t vit_dim, bool with_hq = true);

  /// ref: mask_decoder_hq.py MaskDecoderHQ.forward. image_embeddings [1 or B, E, g, g],
  /// image_pe [1, E, g, g], sparse [B, N, E], dense [B, E, g, g], interm0 [1 or B, g, g, D] (the
  /// first global block's output, channel-last). One mask per prompt set: multimask picks the
  /// SAM token 1..3 with the highest predicted IoU, single takes token 0.
  HQDecoderOutput forward_hq(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                             const torch::Tensor& sparse, const torch::Tensor& dense,
                             const torch::Tensor& interm0, bool multimask_output,
                             bool hq_token_only);

  /// embedding_encoder(image_embeddings) + compress_vit_feat(interm0 as NCHW).
  torch::Tensor hq_features(const torch::Tensor& image_embeddings, const torch::Tensor& interm0);
  /// hf_mlp(token [B, E]) @ (embedding_maskfeature(upscaled_sam) + hq_features) -> [B, 1, 4g, 4g].
  torch::Tensor hq_mask(const torch::Tensor& token, const torch::Tensor& upscaled_sam,
                        const torch::Tensor& hq_features);

  bool with_hq;
  torch::nn::Embedding hf_token{nullptr};
  MLP hf_mlp{nullptr};
  torch::nn::Sequential compress_vit_feat{nullptr}, embedding_encoder{nullptr},
      embedding_maskfeature{nullptr};
};
TORCH_MODULE(MaskDecoderHQ);

/// hyper [B, M, c] @ (maskfeature(upscaled [B, c, h, w]) + features [1 or B, c, h, w]) -> [B, M, h, w].
torch::Tensor fused_masks(const torch::Tensor& hyper, torch::nn::Sequential maskfeature,
                          const torch::Tensor& upscaled, const torch::Tensor& features);

}  // namespace semat::models::sam
