#include "semat/models/internal/sam2/mask_decoder.h"

#include <torch/torch.h>

#include "semat/models/internal/sam/mask_decoder.h"

namespace semat::models::sam2 {

MaskDecoderImpl::MaskDecoderImpl(const models::Sam2MaskDecoderConfig& c)
    : cfg(c), num_mask_tokens(c.num_multimask_outputs + 1) {
  const int64_t d = c.transformer_dim;
  transformer = register_module(
      "transformer", sam::TwoWayTransformer(c.depth, d, c.num_heads, c.mlp_dim, sam::BlockMlp::kSam2));
  iou_token = register_module("iou_token", torch::nn::Embedding(1, d));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens, d));
  if (c.pred_obj_scores) obj_score_token = register_module("obj_score_token", torch::nn::Embedding(1, d));
  using torch::nn::ConvTranspose2d;
  using torch::nn::ConvTranspose2dOptions;
  output_upscaling = register_module(
      "output_upscaling",
      torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(d, d / 4, 2).stride(2)), sam::LayerNorm2d(d / 4),
                            sam::GELU(), ConvTranspose2d(ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2)),
                            sam::GELU()));
  if (c.use_high_res_features) {
    conv_s0 = register_module("conv_s0", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d / 8, 1)));
    conv_s1 = register_module("conv_s1", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d / 4, 1)));
  }
  for (int64_t i = 0; i < num_mask_tokens; ++i) output_hypernetworks_mlps->push_back(sam::MLP(d, d, d / 8, 3));
  register_module("output_hypernetworks_mlps", output_hypernetworks_mlps);
  iou_prediction_head = register_module(
      "iou_prediction_head",
      sam::MLP(d, c.iou_head_hidden_dim, num_mask_tokens, c.iou_head_depth, c.iou_prediction_use_sigmoid));
  // pred_obj_scores_mlp=True in every official config: MLP(d, d, 1, 3).
  if (c.pred_obj_scores) pred_obj_score_head = register_module("pred_obj_score_head", sam::MLP(d, d, 1, 3));
}

torch::Tensor MaskDecoderImpl::upscale(const torch::Tensor& x, const std::vector<torch::Tensor>& hr) {
  return upscale(x, hr, output_upscaling);
}

torch::Tensor MaskDecoderImpl::upscale(const torch::Tensor& x, const std::vector<torch::Tensor>& hr,
                                       const torch::nn::Sequential& layers) {
  const auto& seq = *layers;
  const auto& dc1 = *seq.ptr<torch::nn::ConvTranspose2dImpl>(0);
  const auto& dc2 = *seq.ptr<torch::nn::ConvTranspose2dImpl>(3);
  auto y = sam::conv_transpose_2x2(x, dc1);
  if (cfg.use_high_res_features) {
    TORCH_CHECK(hr.size() == 2 && hr[0].defined() && hr[1].defined(),
                "the SAM 2 mask decoder needs the two high-res features");
    y = y + hr[1];
  }
  y = sam::gelu_act(seq.ptr<sam::LayerNorm2dImpl>(1)->forward(y));
  y = sam::conv_transpose_2x2(y, dc2);
  if (cfg.use_high_res_features) y = y + hr[0];
  return sam::gelu_act(y);
}

// ref: mask_decoder.py MaskDecoder.predict_masks
Sam2DecoderOutput MaskDecoderImpl::predict_masks(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                                                 const torch::Tensor& sparse, const torch::Tensor& dense,
                                                 const std::vector<torch::Tensor>& high_res_features,
                                                 const torch::Tensor& extra_tokens) {
  const int64_t B = sparse.size(0);
  const int64_t s = cfg.pred_obj_scores ? 1 : 0;
  std::vector<torch::Tensor> parts;
  if (cfg.pred_obj_scores) parts.push_back(obj_score_token->weight);
  parts.push_back(iou_token->weight);
  parts.push_back(mask_tokens->weight);
  if (extra_tokens.defined()) parts.push_back(extra_tokens);
  const auto output_tokens = torch::cat(parts, 0).unsqueeze(0).expand({B, -1, -1});
  const auto tokens = torch::cat({output_tokens, sparse}, 1);

  auto src = image_embeddings.size(0) == B ? image_embeddings : image_embeddings.repeat_interleave(B, 0);
  src = src + dense;
  const auto pos_src = image_pe.size(0) == B ? image_pe : image_pe.repeat_interleave(B, 0);
  const int64_t c = src.size(1), h = src.size(2), w = src.size(3);
  auto [hs, keys] = transformer->forward(src, pos_src, tokens);

  Sam2DecoderOutput out;
  out.hs = hs;
  out.mask_tokens_out = hs.narrow(1, s + 1, num_mask_tokens);
  out.image_tokens = keys.transpose(1, 2).reshape({B, c, h, w});
  out.upscaled = upscale(out.image_tokens, high_res_features);
  std::vector<torch::Tensor> hyper;
  for (int64_t i = 0; i < num_mask_tokens; ++i)
    hyper.push_back(output_hypernetworks_mlps[i]->as<sam::MLP>()->forward(out.mask_tokens_out.select(1, i)));
  const auto hyper_in = torch::stack(hyper, 1);
  const auto& up = out.upscaled;
  const int64_t uc = up.size(1), uh = up.size(2), uw = up.size(3);
  out.masks = torch::matmul(hyper_in, up.reshape({B, uc, uh * uw})).view({B, -1, uh, uw});
  out.iou_pred = iou_prediction_head->forward(hs.select(1, s));
  out.object_score_logits = cfg.pred_obj_scores ? pred_obj_score_head->forward(hs.select(1, 0))
                                                : torch::ones({B, 1}, out.iou_pred.options()) * 10.0;
  return out;
}

// ref: mask_decoder.py _get_stability_scores
torch::Tensor MaskDecoderImpl::stability_scores(const torch::Tensor& mask_logits) const {
  const auto flat = mask_logits.flatten(-2);
  const double d = cfg.dynamic_multimask_stability_delta;
  const auto area_i = (flat > d).sum(-1).to(torch::kFloat);
  const auto area_u = (flat > -d).sum(-1).to(torch::kFloat);
  return torch::where(area_u > 0, area_i / area_u, torch::ones_like(area_i));
}

// ref: mask_decoder.py MaskDecoder.forward + _dynamic_multimask_via_stability
std::pair<torch::Tensor, torch::Tensor> MaskDecoderImpl::select_masks(const Sam2DecoderOutput& o,
                                                                      bool multimask_output) const {
  const int64_t m = num_mask_tokens - 1;
  if (multimask_output) return {o.masks.narrow(1, 1, m), o.iou_pred.narrow(1, 1, m)};
  auto single = o.masks.narrow(1, 0, 1);
  auto single_iou = o.iou_pred.narrow(1, 0, 1);
  if (!cfg.dynamic_multimask_via_stability || is_training()) return {single, single_iou};
  const auto multi = o.masks.narrow(1, 1, m);
  const auto multi_iou = o.iou_pred.narrow(1, 1, m);
  const auto best = multi_iou.argmax(-1);  // [B]
  const auto batch = torch::arange(multi.size(0), best.options());
  const auto best_logits = multi.index({batch, best}).unsqueeze(1);
  const auto best_iou = multi_iou.index({batch, best}).unsqueeze(1);
  const auto stable = stability_scores(single) >= cfg.dynamic_multimask_stability_thresh;  // [B, 1]
  return {torch::where(stable.unsqueeze(-1).unsqueeze(-1).expand_as(single), single, best_logits),
          torch::where(stable.expand_as(single_iou), single_iou, best_iou)};
}

}  // namespace semat::models::sam2
