#include "semat/models/internal/semat_net/mask_decoder_matting_token.h"

#include <torch/torch.h>

namespace semat::models::semat_net {

MaskDecoderMattingTokenImpl::MaskDecoderMattingTokenImpl(const models::Sam2MaskDecoderConfig& c,
                                                         int64_t matting_tokens)
    : sam2::MaskDecoderImpl(c), matting_token_num(matting_tokens) {
  const int64_t d = c.transformer_dim;
  matting_mask_tokens =
      register_module("matting_mask_tokens", torch::nn::Embedding(matting_tokens, d));
  for (int64_t i = 0; i < matting_tokens; ++i)
    matting_output_hypernetworks_mlps->push_back(sam::MLP(d, d, d / 8, 3));
  register_module("matting_output_hypernetworks_mlps", matting_output_hypernetworks_mlps);
  // A deepcopy of output_upscaling in the official code: the same layers, its own weights.
  using torch::nn::ConvTranspose2d;
  using torch::nn::ConvTranspose2dOptions;
  matting_output_upscaling = register_module(
      "matting_output_upscaling",
      torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(d, d / 4, 2).stride(2)),
                            sam::LayerNorm2d(d / 4), sam::GELU(),
                            ConvTranspose2d(ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2)),
                            sam::GELU()));
}

std::pair<torch::Tensor, torch::Tensor> MaskDecoderMattingTokenImpl::high_res_features(
    const torch::Tensor& fpn0, const torch::Tensor& fpn1) {
  return {conv_s0->forward(fpn0), conv_s1->forward(fpn1)};
}

// ref: SEMat's sam2/modeling/sam/mask_decoder.py MaskDecoderMattingToken.predict_masks
Sam2MattingDecoderOutput MaskDecoderMattingTokenImpl::forward_matting(
    const torch::Tensor& image_embed, const torch::Tensor& image_pe, const torch::Tensor& sparse,
    const torch::Tensor& dense, const torch::Tensor& feat_s0, const torch::Tensor& feat_s1,
    bool with_matting_tokens) {
  // Tokens [obj_score, iou, mask x4, matting x T] + sparse.
  const std::vector<torch::Tensor> high_res{feat_s0, feat_s1};
  const auto t = predict_masks(image_embed, image_pe, sparse, dense, high_res,
                               with_matting_tokens ? matting_mask_tokens->weight : torch::Tensor());
  Sam2MattingDecoderOutput out;
  out.masks_all = t.masks;
  out.masks_sam = t.masks.narrow(1, 0, 1);
  if (!with_matting_tokens) return out;
  // upscaled_embedding_res_add=False: the matting path is not added to the SAM one.
  const auto up = upscale(t.image_tokens, high_res, matting_output_upscaling);
  const int64_t first = (cfg.pred_obj_scores ? 1 : 0) + 1 + num_mask_tokens;
  std::vector<torch::Tensor> hyper;
  for (int64_t j = 0; j < matting_token_num; ++j)
    hyper.push_back(matting_output_hypernetworks_mlps[j]->as<sam::MLP>()->forward(
        t.hs.select(1, first + j)));
  const int64_t B = up.size(0), c = up.size(1), h = up.size(2), w = up.size(3);
  out.masks_matting =
      torch::matmul(torch::stack(hyper, 1), up.reshape({B, c, h * w})).view({B, -1, h, w});
  return out;
}

}  // namespace semat::models::semat_net
