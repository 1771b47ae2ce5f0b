#include "semat/models/internal/sam/mask_decoder.h"

#include <torch/torch.h>

namespace semat::models::sam {

// A 2x2, stride-2 transposed convolution never overlaps its outputs, so it is one GEMM
// [B h w, C] x [C, O 4] and a pixel shuffle. LibTorch 1.13 runs ConvTranspose2d on CPU through
// slow_conv_transpose2d (im2col + col2im over zero-filled buffers); this is the same arithmetic
// without those passes.
torch::Tensor conv_transpose_2x2(const torch::Tensor& x, const torch::nn::ConvTranspose2dImpl& conv) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = conv.weight.size(1);
  const auto x2 = x.permute({0, 2, 3, 1}).reshape({B * H * W, C});
  const auto w2 = conv.weight.reshape({C, O * 4});
  // The bias joins the GEMM (one value per output channel, repeated over the 2x2 taps) rather
  // than a broadcast add over the shuffled output.
  auto y = conv.bias.defined() ? torch::addmm(conv.bias.repeat_interleave(4), x2, w2) : torch::mm(x2, w2);
  return y.view({B, H, W, O, 2, 2}).permute({0, 3, 1, 4, 2, 5}).reshape({B, O, 2 * H, 2 * W});
}

MaskDecoderImpl::MaskDecoderImpl(const models::MaskDecoderConfig& c)
    : num_mask_tokens(c.num_multimask_outputs + 1) {
  const int64_t d = c.transformer_dim;
  transformer = register_module("transformer", TwoWayTransformer(c.depth, d, c.num_heads, c.mlp_dim));
  iou_token = register_module("iou_token", torch::nn::Embedding(1, d));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens, d));
  using torch::nn::ConvTranspose2d;
  using torch::nn::ConvTranspose2dOptions;
  output_upscaling = register_module(
      "output_upscaling",
      torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(d, d / 4, 2).stride(2)),
                            LayerNorm2d(d / 4), GELU(),
                            ConvTranspose2d(ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2)),
                            GELU()));
  for (int64_t i = 0; i < num_mask_tokens; ++i) output_hypernetworks_mlps->push_back(MLP(d, d, d / 8, 3));
  register_module("output_hypernetworks_mlps", output_hypernetworks_mlps);
  iou_prediction_head = register_module(
      "iou_prediction_head", MLP(d, c.iou_head_hidden_dim, num_mask_tokens, c.iou_head_depth));
}

// ref: mask_decoder.py MaskDecoder.predict_masks (token part)
DecoderTokens MaskDecoderImpl::predict_tokens(const torch::Tensor& image_embeddings,
                                              const torch::Tensor& image_pe,
                                              const torch::Tensor& sparse,
                                              const torch::Tensor& dense,
                                              const torch::Tensor& extra_tokens,
                                              bool upscale_tokens) {
  const int64_t B = sparse.size(0);
  auto output_tokens = torch::cat({iou_token->weight, mask_tokens->weight}, 0);
  if (extra_tokens.defined()) output_tokens = torch::cat({output_tokens, extra_tokens}, 0);
  output_tokens = output_tokens.unsqueeze(0).expand({B, -1, -1});
  const auto tokens = torch::cat({output_tokens, sparse}, 1);

  auto src = image_embeddings.size(0) == B ? image_embeddings
                                           : image_embeddings.repeat_interleave(B, 0);
  src = src + dense;
  const auto pos_src = image_pe.size(0) == B ? image_pe : image_pe.repeat_interleave(B, 0);
  const int64_t c = src.size(1), h = src.size(2), w = src.size(3);
  auto [hs, keys] = transformer->forward(src, pos_src, tokens);
  DecoderTokens out;
  out.hs = hs;
  out.image_tokens = keys.transpose(1, 2).reshape({B, c, h, w});
  if (upscale_tokens) out.upscaled = upscale(out.image_tokens);
  return out;
}

torch::Tensor MaskDecoderImpl::sam_masks(const DecoderTokens& t) {
  const auto mask_tokens_out = t.hs.narrow(1, 1, num_mask_tokens);
  std::vector<torch::Tensor> hyper;
  for (int64_t i = 0; i < num_mask_tokens; ++i)
    hyper.push_back(output_hypernetworks_mlps[i]->as<MLP>()->forward(mask_tokens_out.select(1, i)));
  const auto hyper_in = torch::stack(hyper, 1);
  if (!t.upscaled.defined()) return masks_from_image_tokens(hyper_in, t.image_tokens);
  const auto& up = t.upscaled;
  const int64_t B = up.size(0), uc = up.size(1), uh = up.size(2), uw = up.size(3);
  return torch::matmul(hyper_in, up.view({B, uc, uh * uw})).view({B, -1, uh, uw});
}

// hyper_in @ upscale(x) without materialising the shuffled [B, E/8, 4g, 4g] map: the last
// transposed convolution's GEMM writes its columns tap-major, (di, dj, o), so [B h w 4, O] is a
// plain view, the masks come out per tap, and only the small [B, M, 4g, 4g] result is shuffled.
torch::Tensor MaskDecoderImpl::masks_from_image_tokens(const torch::Tensor& hyper_in,
                                                       const torch::Tensor& x) {
  const auto& seq = *output_upscaling;
  auto y = conv_transpose_2x2(x, *seq.ptr<torch::nn::ConvTranspose2dImpl>(0));
  y = gelu_act(seq.ptr<LayerNorm2dImpl>(1)->forward(y));
  const auto& conv = *seq.ptr<torch::nn::ConvTranspose2dImpl>(3);
  const int64_t B = y.size(0), C = y.size(1), H = y.size(2), W = y.size(3);
  const int64_t O = conv.weight.size(1), M = hyper_in.size(1);
  const auto y2 = y.permute({0, 2, 3, 1}).reshape({B * H * W, C});
  const auto w2 = conv.weight.permute({0, 2, 3, 1}).reshape({C, 4 * O});
  auto z = conv.bias.defined() ? torch::addmm(conv.bias.repeat(4), y2, w2) : torch::mm(y2, w2);
  z = gelu_act(z).view({B, H * W * 4, O});
  const auto m = torch::matmul(hyper_in, z.transpose(1, 2));  // [B, M, (h, w, di, dj)]
  return m.view({B, M, H, W, 2, 2}).permute({0, 1, 2, 4, 3, 5}).reshape({B, M, 2 * H, 2 * W});
}


torch::Tensor MaskDecoderImpl::upscale(const torch::Tensor& x) {
  // output_upscaling = ConvT(k2 s2), LayerNorm2d, GELU, ConvT(k2 s2), GELU (keys .0 .1 .3).
  const auto& seq = *output_upscaling;
  auto y = conv_transpose_2x2(x, *seq.ptr<torch::nn::ConvTranspose2dImpl>(0));
  y = gelu_act(seq.ptr<LayerNorm2dImpl>(1)->forward(y));
  return gelu_act(conv_transpose_2x2(y, *seq.ptr<torch::nn::ConvTranspose2dImpl>(3)));
}

// ref: mask_decoder.py MaskDecoder.forward + predict_masks
DecoderOutput MaskDecoderImpl::forward(const torch::Tensor& image_embeddings,
                                       const torch::Tensor& image_pe, const torch::Tensor& sparse,
                                       const torch::Tensor& dense, bool multimask_output) {
  const auto t = predict_tokens(image_embeddings, image_pe, sparse, dense, {},
                                /*upscale_tokens=*/false);
  auto masks = sam_masks(t);
  auto iou_pred = iou_prediction_head->forward(t.hs.select(1, 0));

  DecoderOutput out;
  if (multimask_output) {
    out.masks = masks.narrow(1, 1, num_mask_tokens - 1);
    out.iou_pred = iou_pred.narrow(1, 1, num_mask_tokens - 1);
  } else {
    out.masks = masks.narrow(1, 0, 1);
    out.iou_pred = iou_pred.narrow(1, 0, 1);
  }
  return out;
}

}  // namespace semat::models::sam
