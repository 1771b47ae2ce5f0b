#include "semat/models/internal/semat_net/mask_decoder_matting.h"

#include <torch/torch.h>

namespace semat::models::semat_net {

MaskDecoderHQMattingImpl::MaskDecoderHQMattingImpl(const models::MaskDecoderConfig& c,
                                                   int64_t vit_dim, int64_t matting_tokens,
                                                   bool with_hq_parts)
    : sam::MaskDecoderHQImpl(c, vit_dim, with_hq_parts), matting_token_num(matting_tokens) {
  const int64_t d = c.transformer_dim;
  matting_hf_token = register_module("matting_hf_token", torch::nn::Embedding(matting_tokens, d));
  matting_hf_mlp = register_module("matting_hf_mlp", sam::MLP(d, d, d / 8, 3));
  matting_compress_vit_feat =
      register_module("matting_compress_vit_feat", sam::compress_vit_feat_layers(vit_dim, d));
  matting_embedding_encoder =
      register_module("matting_embedding_encoder", sam::embedding_encoder_layers(d));
  matting_embedding_maskfeature =
      register_module("matting_embedding_maskfeature", sam::embedding_maskfeature_layers(d));
}

// ref: mask_decoder_hq_matting.py MaskDecoderHQMatting.forward + predict_masks
MattingDecoderOutput MaskDecoderHQMattingImpl::forward_matting(
    const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
    const torch::Tensor& sparse, const torch::Tensor& dense, const torch::Tensor& interm0,
    bool multimask_output) {
  MattingDecoderOutput out;
  // The modules' own forward (ConvTranspose2d), as before the HQ variant existed: the SAM
  // variant's numbers stay bit-identical (its merged-LoRA fixture check sits near 1e-4).
  out.matting_hq_features = matting_embedding_encoder->forward(image_embeddings) +
                            matting_compress_vit_feat->forward(interm0.permute({0, 3, 1, 2}));
  // Tokens [iou, mask x4, (hf_token,) matting x T] + sparse.
  const auto extra = with_hq ? torch::cat({hf_token->weight, matting_hf_token->weight}, 0)
                             : matting_hf_token->weight;
  const auto t = predict_tokens(image_embeddings, image_pe, sparse, dense, extra);
  out.masks_all = sam_masks(t);
  out.iou_pred = iou_prediction_head->forward(t.hs.select(1, 0));

  const int64_t first_matting = 1 + num_mask_tokens + (with_hq ? 1 : 0);
  std::vector<torch::Tensor> hyper;
  for (int64_t i = 0; i < matting_token_num; ++i)
    hyper.push_back(matting_hf_mlp->forward(t.hs.select(1, first_matting + i)));
  out.masks_matting = sam::fused_masks(torch::stack(hyper, 1), matting_embedding_maskfeature,
                                       t.upscaled, out.matting_hq_features);
  if (with_hq) {
    // hq_token_only (SamHqMatte sets it): masks_hq is the HQ token's raw logits, and the matting
    // tokens predict a residual on them.
    out.hq_features = hq_features(image_embeddings, interm0);
    out.masks_hq = hq_mask(t.hs.select(1, 1 + num_mask_tokens), t.upscaled, out.hq_features);
    out.matting_token_logits = out.masks_matting;
    out.masks_matting = out.masks_matting + out.masks_hq;
  }

  const int64_t B = out.masks_all.size(0);
  if (multimask_output) {
    const auto best = out.iou_pred.narrow(1, 1, num_mask_tokens - 1).argmax(1) + 1;  // [B]
    out.masks_sam = out.masks_all.index({torch::arange(B, best.options()), best}).unsqueeze(1);
  } else {
    out.masks_sam = out.masks_all.narrow(1, 0, 1);
  }
  return out;
}

}  // namespace semat::models::semat_net
