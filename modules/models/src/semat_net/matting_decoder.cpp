#include "semat/models/internal/semat_net/matting_decoder.h"

#include <torch/torch.h>

#include "semat/core/error.h"
#include "semat/models/internal/sam/common.h"

namespace semat::models::semat_net {
namespace F = torch::nn::functional;
namespace {

using torch::nn::BatchNorm2d;
using torch::nn::Conv2d;
using torch::nn::Conv2dOptions;
using sam::GELU;

Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  return Conv2d(Conv2dOptions(in, out, k).stride(stride).padding(k / 2));
}

// The official code uses detectron2's NaiveSyncBatchNorm, which is BatchNorm2d in eval.
BatchNorm2d bn(int64_t c) { return BatchNorm2d(torch::nn::BatchNorm2dOptions(c).eps(1e-5)); }

torch::Tensor run_layers(torch::nn::ModuleList& layers, torch::Tensor x) {
  for (const auto& m : *layers) {
    if (auto* s = m->as<torch::nn::SequentialImpl>())
      x = s->forward(x);
    else
      x = sam::gelu_act(x);
  }
  return x;
}

}  // namespace

BasicDownBlockImpl::BasicDownBlockImpl(int64_t in, int64_t out, int64_t k) {
  basic_layer->push_back(
      torch::nn::Sequential(conv(in, out, k, 2), bn(out), GELU(), conv(out, out, k), bn(out)));
  basic_layer->push_back(GELU());
  basic_layer->push_back(
      torch::nn::Sequential(conv(out, out, k), bn(out), GELU(), conv(out, out, k), bn(out)));
  register_module("basic_layer", basic_layer);
  res_layer = register_module("res_layer", conv(in, out, k, 2));
}

torch::Tensor BasicDownBlockImpl::forward(const torch::Tensor& x) {
  const auto identity = res_layer->forward(x);
  return sam::gelu_act(run_layers(basic_layer, x) + identity);
}

BasicUpBlockImpl::BasicUpBlockImpl(int64_t in, int64_t out, int64_t k) {
  using torch::nn::ConvTranspose2d;
  using torch::nn::ConvTranspose2dOptions;
  basic_layer->push_back(
      torch::nn::Sequential(ConvTranspose2d(ConvTranspose2dOptions(in, out, 2).stride(2)), bn(out),
                            GELU(), conv(out, out, k), bn(out)));
  basic_layer->push_back(GELU());
  basic_layer->push_back(
      torch::nn::Sequential(conv(out, out, k), bn(out), GELU(), conv(out, out, k), bn(out)));
  register_module("basic_layer", basic_layer);
  res_layer = register_module("res_layer", conv(in, out, k));
}

torch::Tensor BasicUpBlockImpl::forward(const torch::Tensor& x_in, const torch::Tensor& skip) {
  const auto x = x_in + skip;
  const auto out = run_layers(basic_layer, x);
  // The residual upsamples the summed input first, then convolves (not the other way round).
  const auto up = F::interpolate(x, F::InterpolateFuncOptions()
                                        .size(std::vector<int64_t>{out.size(2), out.size(3)})
                                        .mode(torch::kBilinear)
                                        .align_corners(false));
  return sam::gelu_act(out + res_layer->forward(up));
}

MattingDetailDecoderImpl::MattingDetailDecoderImpl(const models::MattingDecoderConfig& c) : cfg(c) {
  // The stem's 16/32 widths are literals in the official code, independent of the config.
  big_kernel_process = register_module(
      "big_kernel_process", torch::nn::Sequential(conv(c.img_feat_in, 16, 13), bn(16), GELU(),
                                                  conv(16, 32, 13), bn(32), GELU()));
  const int64_t n = static_cast<int64_t>(c.vit_feat_index.size());
  const int64_t proj_out = c.vit_feat_in / n;
  if (!c.sam2_multi_scale) {
    vit_feat_proj = torch::nn::ModuleDict();
    for (int64_t idx : c.vit_feat_index)
      vit_feat_proj->update(
          {{std::to_string(idx), Conv2d(Conv2dOptions(c.vit_feat_in, proj_out, 1)).ptr()}});
    register_module("vit_feat_proj", vit_feat_proj);
  }
  const int64_t bottleneck = c.down.back().second;
  // Built for the SAM2 variant too: it is in the official checkpoints (and Table 7's count).
  vit_feat_aggregation = register_module(
      "vit_feat_aggregation",
      torch::nn::Sequential(conv(proj_out * n, bottleneck, 3), bn(bottleneck), GELU()));
  for (const auto& [in, out] : c.down) down_blks->push_back(BasicDownBlock(in, out, 5));
  register_module("down_blks", down_blks);
  if (c.sam2_multi_scale) {
    const int64_t d = c.sam2_dim;
    SEMAT_CHECK(c.down.size() == 4 && c.down[2].first == c.down[1].second + d / 8 &&
                    c.down[3].first == c.down[2].second + d / 4,
                ConfigError,
                "SAM2 matting decoder: down_blks[2] / [3] take the previous block's output plus the "
                "D/8 / D/4 high-res channels (D = "
                    << d << "); the config's down widths do not");
    auto block = [&](int64_t in, int64_t out, int64_t k) {
      return torch::nn::Sequential(conv(in, out, k), bn(out), GELU());
    };
    mid_layers = torch::nn::ModuleList();
    mid_layers->push_back(block(d / 8, d / 8, 1));
    mid_layers->push_back(block(d / 4, d / 4, 1));
    mid_layers->push_back(block(d, d, 1));
    mid_layers->push_back(block(bottleneck + d, bottleneck, 3));
    register_module("mid_layer", mid_layers);
  } else {
    mid_layer = register_module(
        "mid_layer",
        torch::nn::Sequential(conv(2 * bottleneck, bottleneck, 1), bn(bottleneck), GELU()));
  }
  for (const auto& [in, out] : c.up) up_blks->push_back(BasicUpBlock(in, out, 3));
  register_module("up_blks", up_blks);
  matting_head = register_module("matting_head", conv(c.head_in, 1, 3));
}

torch::Tensor MattingDetailDecoderImpl::unet(
    const torch::Tensor& images, const torch::Tensor& matting_logits,
    const std::vector<torch::Tensor>& down_extra,
    const std::function<torch::Tensor(const torch::Tensor&)>& bottleneck,
    MattingDecoderTrace* trace) {
  const auto input = torch::cat({images, matting_logits / cfg.norm_mask_logits}, 1);
  std::vector<torch::Tensor> details;
  auto d = big_kernel_process->forward(input);
  for (size_t i = 0; i < down_blks->size(); ++i) {
    if (i < down_extra.size() && down_extra[i].defined()) d = torch::cat({d, down_extra[i]}, 1);
    d = down_blks[i]->as<BasicDownBlock>()->forward(d);
    details.push_back(d);
  }
  auto out = bottleneck(details.back());
  if (trace) trace->input = input, trace->down3 = details.back(), trace->mid = out;
  const size_t n = up_blks->size();
  for (size_t i = 0; i < n; ++i) {
    out = up_blks[i]->as<BasicUpBlock>()->forward(out, details[details.size() - 1 - i]);
    if (trace && i == 0) trace->up0 = out;
  }
  return matting_head->forward(out);
}

// ref: unet_detail_capture.py MattingDetailDecoder.preprocess_inputs + forward
torch::Tensor MattingDetailDecoderImpl::forward(const torch::Tensor& images,
                                                const torch::Tensor& matting_logits,
                                                const std::vector<torch::Tensor>& vit_feats,
                                                MattingDecoderTrace* trace) {
  SEMAT_CHECK(!cfg.sam2_multi_scale, StateError,
              "the SAM2 matting decoder takes SAM 2 features (forward_sam2)");
  std::vector<torch::Tensor> projected;
  for (int64_t idx : cfg.vit_feat_index) {
    auto* proj = vit_feat_proj[std::to_string(idx)]->as<torch::nn::Conv2dImpl>();
    projected.push_back(
        proj->forward(vit_feats.at(static_cast<size_t>(idx)).permute({0, 3, 1, 2})));
  }
  const auto vit_agg = vit_feat_aggregation->forward(torch::cat(projected, 1));
  if (trace) trace->vit_agg = vit_agg;
  return unet(
      images, matting_logits, {},
      [&](const torch::Tensor& down3) { return mid_layer->forward(torch::cat({down3, vit_agg}, 1)); },
      trace);
}

// ref: the same, sam2_multi_scale_feates=True
torch::Tensor MattingDetailDecoderImpl::forward_sam2(const torch::Tensor& images,
                                                     const torch::Tensor& matting_logits,
                                                     const torch::Tensor& image_embed,
                                                     const torch::Tensor& high_res0,
                                                     const torch::Tensor& high_res1,
                                                     MattingDecoderTrace* trace) {
  SEMAT_CHECK(cfg.sam2_multi_scale, StateError,
              "forward_sam2 needs a matting decoder built for SAM 2 features");
  auto mid = [&](size_t i, const torch::Tensor& x) {
    return mid_layers[i]->as<torch::nn::Sequential>()->forward(x);
  };
  const auto m0 = mid(0, high_res0), m1 = mid(1, high_res1), m2 = mid(2, image_embed);
  if (trace) trace->mid_layer0 = m0, trace->mid_layer1 = m1, trace->mid_layer2 = m2;
  return unet(
      images, matting_logits, {torch::Tensor(), torch::Tensor(), m0, m1},
      [&](const torch::Tensor& down3) { return mid(3, torch::cat({down3, m2}, 1)); }, trace);
}

}  // namespace semat::models::semat_net
