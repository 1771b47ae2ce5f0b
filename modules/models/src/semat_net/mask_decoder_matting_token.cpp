#include "semat/models/internal/semat_net/mask_decoder_matting_token.h"

#include <torch/torch.h>

#include "semat/models/internal/sam/mask_decoder.h"

namespace semat::models::semat_net {
namespace {

torch::nn::Sequential upscaling_layers(int64_t d) {
  using torch::nn::ConvTranspose2d;
  using torch::nn::ConvTranspose2dOptions;
  return torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(d, d / 4, 2).stride(2)),
                               sam::LayerNorm2d(d / 4), sam::GELU(),
                               ConvTranspose2d(ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2)),
                               sam::GELU());
}

// SAM 2's upscaling with high-resolution skips: GELU(LN2d(ConvT1(x) + feat_s1)), then
// GELU(ConvT2(.) + feat_s0). The skips enter before the LayerNorm / the last GELU.
torch::Tensor upscale_with_skips(const torch::nn::Sequential& seq, const torch::Tensor& x,
                                 const torch::Tensor& feat_s0, const torch::Tensor& feat_s1) {
  auto y = sam::conv_transpose_2x2(x, *seq->ptr<torch::nn::ConvTranspose2dImpl>(0)) + feat_s1;
  y = sam::gelu_act(seq->ptr<sam::LayerNorm2dImpl>(1)->forward(y));
  y = sam::conv_transpose_2x2(y, *seq->ptr<torch::nn::ConvTranspose2dImpl>(3)) + feat_s0;
  return sam::gelu_act(y);
}

torch::Tensor hyper_masks(const torch::Tensor& hyper, const torch::Tensor& up) {
  const int64_t B = up.size(0), c = up.size(1), h = up.size(2), w = up.size(3);
  return torch::matmul(hyper, up.reshape({B, c, h * w})).view({B, -1, h, w});
}

}  // namespace

MaskDecoderMattingTokenImpl::MaskDecoderMattingTokenImpl(const models::MaskDecoderConfig& c,
                                                         int64_t matting_tokens)
    : num_mask_tokens(c.num_multimask_outputs + 1), matting_token_num(matting_tokens) {
  const int64_t d = c.transformer_dim;
  transformer = register_module(
      "transformer", sam::TwoWayTransformer(c.depth, d, c.num_heads, c.mlp_dim, /*mlp_layers=*/true));
  iou_token = register_module("iou_token", torch::nn::Embedding(1, d));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens, d));
  obj_score_token = register_module("obj_score_token", torch::nn::Embedding(1, d));
  output_upscaling = register_module("output_upscaling", upscaling_layers(d));
  conv_s0 = register_module("conv_s0", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d / 8, 1)));
  conv_s1 = register_module("conv_s1", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d / 4, 1)));
  for (int64_t i = 0; i < num_mask_tokens; ++i)
    output_hypernetworks_mlps->push_back(sam::MLP(d, d, d / 8, 3));
  register_module("output_hypernetworks_mlps", output_hypernetworks_mlps);
  iou_prediction_head = register_module(
      "iou_prediction_head",
      sam::MLP(d, c.iou_head_hidden_dim, num_mask_tokens, c.iou_head_depth, /*sigmoid=*/true));
  pred_obj_score_head = register_module("pred_obj_score_head", sam::MLP(d, d, 1, 3));
  matting_mask_tokens =
      register_module("matting_mask_tokens", torch::nn::Embedding(matting_tokens, d));
  for (int64_t i = 0; i < matting_tokens; ++i)
    matting_output_hypernetworks_mlps->push_back(sam::MLP(d, d, d / 8, 3));
  register_module("matting_output_hypernetworks_mlps", matting_output_hypernetworks_mlps);
  matting_output_upscaling = register_module("matting_output_upscaling", upscaling_layers(d));
}

std::pair<torch::Tensor, torch::Tensor> MaskDecoderMattingTokenImpl::high_res_features(
    const torch::Tensor& fpn0, const torch::Tensor& fpn1) {
  return {conv_s0->forward(fpn0), conv_s1->forward(fpn1)};
}

// ref: SEMat's sam2/modeling/sam/mask_decoder.py MaskDecoderMattingToken.predict_masks
Sam2MattingDecoderOutput MaskDecoderMattingTokenImpl::forward(
    const torch::Tensor& image_embed, const torch::Tensor& image_pe, const torch::Tensor& sparse,
    const torch::Tensor& dense, const torch::Tensor& feat_s0, const torch::Tensor& feat_s1,
    bool with_matting_tokens) {
  const int64_t B = sparse.size(0);
  // [obj_score, iou, mask x4, matting x T] + sparse.
  std::vector<torch::Tensor> own{obj_score_token->weight, iou_token->weight, mask_tokens->weight};
  if (with_matting_tokens) own.push_back(matting_mask_tokens->weight);
  const auto output_tokens = torch::cat(own, 0);
  const auto tokens = torch::cat({output_tokens.unsqueeze(0).expand({B, -1, -1}), sparse}, 1);
  const auto src = image_embed + dense;
  const auto pos_src = image_pe.expand({B, -1, -1, -1});
  const int64_t c = src.size(1), h = src.size(2), w = src.size(3);
  auto [hs, keys] = transformer->forward(src, pos_src, tokens);
  const auto image_tokens = keys.transpose(1, 2).reshape({B, c, h, w});

  const auto up = upscale_with_skips(output_upscaling, image_tokens, feat_s0, feat_s1);
  std::vector<torch::Tensor> hyper;
  for (int64_t i = 0; i < num_mask_tokens; ++i)
    hyper.push_back(output_hypernetworks_mlps[i]->as<sam::MLP>()->forward(hs.select(1, 2 + i)));
  Sam2MattingDecoderOutput out;
  out.masks_all = hyper_masks(torch::stack(hyper, 1), up);
  out.masks_sam = out.masks_all.narrow(1, 0, 1);
  if (!with_matting_tokens) return out;
  // upscaled_embedding_res_add=False: the matting path is not added to the SAM one.
  const auto up_mat = upscale_with_skips(matting_output_upscaling, image_tokens, feat_s0, feat_s1);
  std::vector<torch::Tensor> hyper_mat;
  for (int64_t j = 0; j < matting_token_num; ++j)
    hyper_mat.push_back(matting_output_hypernetworks_mlps[j]->as<sam::MLP>()->forward(
        hs.select(1, 2 + num_mask_tokens + j)));
  out.masks_matting = hyper_masks(torch::stack(hyper_mat, 1), up_mat);
  return out;
}

}  // namespace semat::models::semat_net
