#include "semat/models/internal/vitmatte/vit.h"

#include <torch/torch.h>

#include <algorithm>

namespace semat::models::vitmatte {
namespace F = torch::nn::functional;

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return fc2->forward(sam::gelu_act(fc1->forward(x)));
}

ResBottleneckBlockImpl::ResBottleneckBlockImpl(int64_t c, int64_t b) {
  using torch::nn::Conv2dOptions;
  conv1 = register_module("conv1", torch::nn::Conv2d(Conv2dOptions(c, b, 1).bias(false)));
  norm1 = register_module("norm1", sam::LayerNorm2d(b, 1e-6));
  conv2 = register_module("conv2", torch::nn::Conv2d(Conv2dOptions(b, b, 3).padding(1).bias(false)));
  norm2 = register_module("norm2", sam::LayerNorm2d(b, 1e-6));
  conv3 = register_module("conv3", torch::nn::Conv2d(Conv2dOptions(b, c, 1).bias(false)));
  norm3 = register_module("norm3", sam::LayerNorm2d(c, 1e-6));
}

// ref: detectron2 ResBottleneckBlock (children in order, then x + out).
torch::Tensor ResBottleneckBlockImpl::forward(const torch::Tensor& x) {
  auto y = sam::gelu_act(norm1->forward(conv1->forward(x)));
  y = sam::gelu_act(norm2->forward(conv2->forward(y)));
  return x + norm3->forward(conv3->forward(y));
}

BlockImpl::BlockImpl(const VitMatteConfig& cfg, int64_t ws, bool use_residual) : window_size(ws) {
  const int64_t dim = cfg.embed_dim;
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  attn = register_module("attn", sam::Attention(dim, cfg.num_heads, ws > 0 ? ws : cfg.img_size / cfg.patch_size));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  mlp = register_module("mlp", Mlp(dim, cfg.mlp_dim));
  if (use_residual) residual = register_module("residual", ResBottleneckBlock(dim, dim / 2));
}

// ref: vit.py Block.forward. Window blocks zero-pad the normed tokens to a multiple of the
// window and attend over the padding unmasked (as the official code).
torch::Tensor BlockImpl::forward(const torch::Tensor& x, torch::Tensor* attn_mlp_out) {
  auto y = norm1->forward(x);
  if (window_size > 0) {
    const int64_t H = y.size(1), W = y.size(2);
    auto [win, pad_hw] = sam::window_partition(y, window_size);
    y = sam::window_unpartition(attn->forward(win), window_size, pad_hw, H, W);
  } else {
    y = attn->forward(y);
  }
  auto h = x + y;
  h = h + mlp->forward(norm2->forward(h));
  if (!residual) return h;
  if (attn_mlp_out) *attn_mlp_out = h;
  return residual->forward(h.permute({0, 3, 1, 2})).permute({0, 2, 3, 1});
}

ViTImpl::ViTImpl(const VitMatteConfig& c) : cfg(c) {
  patch_embed = register_module("patch_embed", sam::PatchEmbed(c.patch_size, c.in_chans, c.embed_dim));
  pos_embed = register_parameter("pos_embed",
                                 torch::zeros({1, c.pretrain_grid * c.pretrain_grid + 1, c.embed_dim}));
  auto has = [](const std::vector<int64_t>& v, int64_t i) { return std::find(v.begin(), v.end(), i) != v.end(); };
  for (int64_t i = 0; i < c.depth; ++i)
    blocks->push_back(Block(c, has(c.window_block_indexes, i) ? c.window_size : 0,
                            has(c.residual_block_indexes, i)));
  register_module("blocks", blocks);
}

// ref: backbone/utils.py get_abs_pos (the cls entry is dropped).
torch::Tensor ViTImpl::abs_pos(int64_t h, int64_t w) const {
  const int64_t g = cfg.pretrain_grid;
  auto p = pos_embed.narrow(1, 1, g * g).reshape({1, g, g, -1});
  if (g == h && g == w) return p;
  return F::interpolate(p.permute({0, 3, 1, 2}), F::InterpolateFuncOptions()
                                                     .size(std::vector<int64_t>{h, w})
                                                     .mode(torch::kBicubic)
                                                     .align_corners(false))
      .permute({0, 2, 3, 1});
}

torch::Tensor ViTImpl::forward(const torch::Tensor& input, VitTrace* trace) {
  auto x = patch_embed->forward(input);
  const auto pos = abs_pos(x.size(1), x.size(2));
  if (trace) trace->patch_embed = x, trace->abs_pos = pos;
  x = x + pos;
  for (const auto& m : *blocks) {
    torch::Tensor mid;
    x = m->as<Block>()->forward(x, trace ? &mid : nullptr);
    if (trace) trace->blocks.push_back(x), trace->attn_mlp_out.push_back(mid);
  }
  return x.permute({0, 3, 1, 2});
}

}  // namespace semat::models::vitmatte
