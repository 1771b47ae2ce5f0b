#include "semat/models/internal/vitmatte/vitmatte.h"

#include <torch/torch.h>

#include "semat/core/error.h"

namespace semat::models::vitmatte {
namespace F = torch::nn::functional;

VitMatteImpl::VitMatteImpl(const VitMatteConfig& c) : cfg(c) {
  backbone = register_module("backbone", ViT(c));
  decoder = register_module("decoder", DetailCapture(c));
}

std::pair<int64_t, int64_t> VitMatteImpl::padded_size(int64_t H, int64_t W) {
  if (H % 32 == 0 && W % 32 == 0) return {H, W};
  return {H + 32 - H % 32, W + 32 - W % 32};
}

// ref: vitmatte.py preprocess_inputs (inference: no trimap quantisation, which only runs with
// an "fg" input while training).
torch::Tensor VitMatteImpl::preprocess(const torch::Tensor& rgb, const torch::Tensor& trimap) const {
  SEMAT_CHECK(rgb.dim() == 4 && rgb.size(1) == 3 && trimap.dim() == 4 && trimap.size(1) == 1 &&
                  rgb.size(0) == trimap.size(0) && rgb.size(2) == trimap.size(2) &&
                  rgb.size(3) == trimap.size(3),
              InvalidArgument, "ViTMatte takes rgb [B, 3, H, W] and trimap [B, 1, H, W] of one size");
  // float32 of the config's doubles (ImageNet statistics / 255).
  const auto opts = rgb.options().dtype(torch::kFloat);
  const auto mean = torch::tensor({static_cast<float>(123.675 / 255.), static_cast<float>(116.280 / 255.),
                                   static_cast<float>(103.530 / 255.)}, opts).view({1, 3, 1, 1});
  const auto stdev = torch::tensor({static_cast<float>(58.395 / 255.), static_cast<float>(57.120 / 255.),
                                  static_cast<float>(57.375 / 255.)}, opts).view({1, 3, 1, 1});
  auto x = torch::cat({(rgb.to(torch::kFloat) - mean) / stdev, trimap.to(torch::kFloat)}, 1);
  const int64_t H = x.size(2), W = x.size(3);
  const auto [Hp, Wp] = padded_size(H, W);
  if (Hp != H || Wp != W) x = F::pad(x, F::PadFuncOptions({0, Wp - W, 0, Hp - H}));
  return x;
}

torch::Tensor VitMatteImpl::logits(const torch::Tensor& input, VitMatteTrace* trace) {
  const auto features = backbone->forward(input, trace ? &trace->vit : nullptr);
  if (trace) trace->input = input, trace->features = features;
  return decoder->forward(features, input, trace ? &trace->decoder : nullptr);
}

torch::Tensor VitMatteImpl::forward(const torch::Tensor& rgb, const torch::Tensor& trimap, VitMatteTrace* trace) {
  using torch::indexing::Slice;
  const int64_t H = rgb.size(2), W = rgb.size(3);
  const auto phas = torch::sigmoid(logits(preprocess(rgb, trimap), trace));
  return phas.index({Slice(), Slice(), Slice(0, H), Slice(0, W)});
}

}  // namespace semat::models::vitmatte
