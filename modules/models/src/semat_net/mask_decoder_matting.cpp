#include "semat/models/internal/semat_net/mask_decoder_matting.h"

#include <torch/torch.h>

namespace semat::models::semat_net {

MaskDecoderHQMattingImpl::MaskDecoderHQMattingImpl(const models::MaskDecoderConfig& c,
                                                   int64_t vit_dim, int64_t matting_tokens)
    : sam::MaskDecoderImpl(c), matting_token_num(matting_tokens) {
  using torch::nn::Conv2d;
  using torch::nn::Conv2dOptions;
  using torch::nn::ConvTranspose2d;
  using torch::nn::ConvTranspose2dOptions;
  const int64_t d = c.transformer_dim;
  matting_hf_token = register_module("matting_hf_token", torch::nn::Embedding(matting_tokens, d));
  matting_hf_mlp = register_module("matting_hf_mlp", sam::MLP(d, d, d / 8, 3));
  matting_compress_vit_feat = register_module(
      "matting_compress_vit_feat",
      torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(vit_dim, d, 2).stride(2)),
                            sam::LayerNorm2d(d), sam::GELU(),
                            ConvTranspose2d(ConvTranspose2dOptions(d, d / 8, 2).stride(2))));
  matting_embedding_encoder = register_module(
      "matting_embedding_encoder",
      torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(d, d / 4, 2).stride(2)),
                            sam::LayerNorm2d(d / 4), sam::GELU(),
                            ConvTranspose2d(ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2))));
  matting_embedding_maskfeature =
      register_module("matting_embedding_maskfeature",
                      torch::nn::Sequential(Conv2d(Conv2dOptions(d / 8, d / 4, 3).padding(1)),
                                            sam::LayerNorm2d(d / 4), sam::GELU(),
                                            Conv2d(Conv2dOptions(d / 4, d / 8, 3).padding(1))));
}

// ref: mask_decoder_hq_matting.py MaskDecoderHQMatting.forward + predict_masks (wo_hq)
MattingDecoderOutput MaskDecoderHQMattingImpl::forward_matting(
    const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
    const torch::Tensor& sparse, const torch::Tensor& dense, const torch::Tensor& interm0,
    bool multimask_output) {
  const auto hq_features = matting_embedding_encoder->forward(image_embeddings) +
                           matting_compress_vit_feat->forward(interm0.permute({0, 3, 1, 2}));
  const auto t =
      predict_tokens(image_embeddings, image_pe, sparse, dense, matting_hf_token->weight);
  MattingDecoderOutput out;
  out.masks_all = sam_masks(t);
  out.iou_pred = iou_prediction_head->forward(t.hs.select(1, 0));

  const int64_t B = t.upscaled.size(0);
  auto up_matting = matting_embedding_maskfeature->forward(t.upscaled);
  up_matting =
      up_matting + (hq_features.size(0) == B ? hq_features : hq_features.repeat({B, 1, 1, 1}));
  std::vector<torch::Tensor> hyper;
  for (int64_t i = 0; i < matting_token_num; ++i)
    hyper.push_back(matting_hf_mlp->forward(t.hs.select(1, 1 + num_mask_tokens + i)));
  const auto hyper_in = torch::stack(hyper, 1);
  const int64_t c = up_matting.size(1), h = up_matting.size(2), w = up_matting.size(3);
  out.masks_matting = torch::matmul(hyper_in, up_matting.view({B, c, h * w})).view({B, -1, h, w});

  if (multimask_output) {
    const auto best = out.iou_pred.narrow(1, 1, num_mask_tokens - 1).argmax(1) + 1;  // [B]
    out.masks_sam = out.masks_all.index({torch::arange(B, best.options()), best}).unsqueeze(1);
  } else {
    out.masks_sam = out.masks_all.narrow(1, 0, 1);
  }
  return out;
}

}  // namespace semat::models::semat_net
