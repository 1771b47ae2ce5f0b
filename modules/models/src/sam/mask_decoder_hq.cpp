#include "semat/models/internal/sam/mask_decoder_hq.h"

#include <torch/torch.h>

namespace semat::models::sam {

using torch::nn::Conv2d;
using torch::nn::Conv2dOptions;
using torch::nn::ConvTranspose2d;
using torch::nn::ConvTranspose2dOptions;

torch::nn::Sequential compress_vit_feat_layers(int64_t vit_dim, int64_t d) {
  return torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(vit_dim, d, 2).stride(2)),
                               LayerNorm2d(d), GELU(),
                               ConvTranspose2d(ConvTranspose2dOptions(d, d / 8, 2).stride(2)));
}

torch::nn::Sequential embedding_encoder_layers(int64_t d) {
  return torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(d, d / 4, 2).stride(2)),
                               LayerNorm2d(d / 4), GELU(),
                               ConvTranspose2d(ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2)));
}

torch::nn::Sequential embedding_maskfeature_layers(int64_t d) {
  return torch::nn::Sequential(Conv2d(Conv2dOptions(d / 8, d / 4, 3).padding(1)), LayerNorm2d(d / 4),
                               GELU(), Conv2d(Conv2dOptions(d / 4, d / 8, 3).padding(1)));
}

torch::Tensor run_upscaling_fusion(torch::nn::Sequential seq, const torch::Tensor& x) {
  const auto& s = *seq;
  auto y = conv_transpose_2x2(x, *s.ptr<torch::nn::ConvTranspose2dImpl>(0));
  y = gelu_act(s.ptr<LayerNorm2dImpl>(1)->forward(y));
  return conv_transpose_2x2(y, *s.ptr<torch::nn::ConvTranspose2dImpl>(3));
}

torch::Tensor fused_masks(const torch::Tensor& hyper, torch::nn::Sequential maskfeature,
                          const torch::Tensor& upscaled, const torch::Tensor& features) {
  const int64_t B = upscaled.size(0);
  auto up = maskfeature->forward(upscaled);
  up = up + (features.size(0) == B ? features : features.expand({B, -1, -1, -1}));
  const int64_t c = up.size(1), h = up.size(2), w = up.size(3);
  return torch::matmul(hyper, up.reshape({B, c, h * w})).view({B, -1, h, w});
}

MaskDecoderHQImpl::MaskDecoderHQImpl(const models::MaskDecoderConfig& c, int64_t vit_dim,
                                     bool with_hq_parts)
    : MaskDecoderImpl(c), with_hq(with_hq_parts) {
  if (!with_hq) return;
  const int64_t d = c.transformer_dim;
  hf_token = register_module("hf_token", torch::nn::Embedding(1, d));
  hf_mlp = register_module("hf_mlp", MLP(d, d, d / 8, 3));
  compress_vit_feat = register_module("compress_vit_feat", compress_vit_feat_layers(vit_dim, d));
  embedding_encoder = register_module("embedding_encoder", embedding_encoder_layers(d));
  embedding_maskfeature = register_module("embedding_maskfeature", embedding_maskfeature_layers(d));
}

torch::Tensor MaskDecoderHQImpl::hq_features(const torch::Tensor& image_embeddings,
                                             const torch::Tensor& interm0) {
  return run_upscaling_fusion(embedding_encoder, image_embeddings) +
         run_upscaling_fusion(compress_vit_feat, interm0.permute({0, 3, 1, 2}));
}

torch::Tensor MaskDecoderHQImpl::hq_mask(const torch::Tensor& token, const torch::Tensor& upscaled_sam,
                                         const torch::Tensor& features) {
  return fused_masks(hf_mlp->forward(token).unsqueeze(1), embedding_maskfeature, upscaled_sam,
                     features);
}

// ref: mask_decoder_hq.py MaskDecoderHQ.forward + predict_masks
HQDecoderOutput MaskDecoderHQImpl::forward_hq(const torch::Tensor& image_embeddings,
                                              const torch::Tensor& image_pe,
                                              const torch::Tensor& sparse, const torch::Tensor& dense,
                                              const torch::Tensor& interm0, bool multimask_output,
                                              bool hq_token_only) {
  TORCH_CHECK(with_hq, "forward_hq on a decoder built without the HQ parts");
  HQDecoderOutput out;
  out.hq_features = hq_features(image_embeddings, interm0);
  // Tokens [iou, mask x4, hf_token] + sparse.
  const auto t = predict_tokens(image_embeddings, image_pe, sparse, dense, hf_token->weight);
  out.upscaled_sam = t.upscaled;
  const auto masks_sam_all = sam_masks(t);  // [B, 4, 4g, 4g]
  const auto masks_hq = hq_mask(t.hs.select(1, 1 + num_mask_tokens), t.upscaled, out.hq_features);
  out.masks_all = torch::cat({masks_sam_all, masks_hq}, 1);
  out.iou_all = iou_prediction_head->forward(t.hs.select(1, 0));
  const int64_t B = masks_sam_all.size(0);
  torch::Tensor masks_sam;
  if (multimask_output) {
    const auto [iou, idx] = out.iou_all.narrow(1, 1, num_mask_tokens - 1).max(1);
    out.iou_pred = iou.unsqueeze(1);
    masks_sam = masks_sam_all.narrow(1, 1, num_mask_tokens - 1)
                    .index({torch::arange(B, idx.options()), idx})
                    .unsqueeze(1);
  } else {
    out.iou_pred = out.iou_all.narrow(1, 0, 1);
    masks_sam = masks_sam_all.narrow(1, 0, 1);
  }
  out.masks = hq_token_only ? masks_hq : masks_sam + masks_hq;
  return out;
}

}  // namespace semat::models::sam
