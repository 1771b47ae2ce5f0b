#include "semat/models/internal/sam2/image_encoder.h"

#include <torch/torch.h>

#include <algorithm>

namespace semat::models::sam2 {
namespace F = torch::nn::functional;

FpnLateralImpl::FpnLateralImpl(int64_t in_channels, int64_t d_model) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, d_model, 1)));
}

FpnNeckImpl::FpnNeckImpl(const models::FpnNeckConfig& c) : cfg(c) {
  for (int64_t ch : c.backbone_channel_list) convs->push_back(FpnLateral(ch, c.d_model));
  register_module("convs", convs);
}

// ref: image_encoder.py FpnNeck.forward (fuse_type 'sum', fpn_interp_model 'nearest')
std::vector<torch::Tensor> FpnNeckImpl::forward(const std::vector<torch::Tensor>& xs) {
  const int64_t n = static_cast<int64_t>(convs->size()) - 1;
  std::vector<torch::Tensor> out(xs.size());
  torch::Tensor prev;
  const auto& td = cfg.fpn_top_down_levels;
  for (int64_t i = n; i >= 0; --i) {
    auto lateral = convs[n - i]->as<FpnLateral>()->forward(xs[static_cast<size_t>(i)]);
    if (prev.defined() && std::find(td.begin(), td.end(), i) != td.end()) {
      const auto up = F::interpolate(prev.to(torch::kFloat), F::InterpolateFuncOptions()
                                                                 .scale_factor(std::vector<double>{2.0, 2.0})
                                                                 .mode(torch::kNearest));
      prev = lateral + up;
    } else {
      prev = lateral;
    }
    out[static_cast<size_t>(i)] = prev;
  }
  return out;
}

ImageEncoderImpl::ImageEncoderImpl(const models::HieraConfig& t, const models::FpnNeckConfig& n) : scalp(n.scalp) {
  trunk = register_module("trunk", Hiera(t));
  neck = register_module("neck", FpnNeck(n));
}

ImageEncoderOutput ImageEncoderImpl::forward(const torch::Tensor& x, const torch::Tensor& extra_embedding) {
  return forward_trunk_outputs(trunk->forward(x, extra_embedding));
}

// ref: image_encoder.py ImageEncoder.forward
ImageEncoderOutput ImageEncoderImpl::forward_trunk_outputs(std::vector<torch::Tensor> trunk_out) {
  ImageEncoderOutput o;
  o.backbone_fpn = neck->forward(trunk_out);
  o.trunk = std::move(trunk_out);
  if (scalp > 0) o.backbone_fpn.resize(o.backbone_fpn.size() - static_cast<size_t>(std::min<int64_t>(scalp, o.backbone_fpn.size() - 1)));
  o.vision_features = o.backbone_fpn.back();
  return o;
}

}  // namespace semat::models::sam2
