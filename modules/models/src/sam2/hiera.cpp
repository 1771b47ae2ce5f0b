#include "semat/models/internal/sam2/hiera.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "semat/core/error.h"
#include "semat/models/internal/sam/image_encoder.h"

namespace semat::models::sam2 {
namespace F = torch::nn::functional;
namespace {

std::atomic<int64_t> g_score_budget{32 << 20};

torch::Tensor attention_rows(const torch::Tensor& q, const torch::Tensor& k_t, const torch::Tensor& v, double scale) {
  return torch::matmul(torch::softmax(torch::matmul(q, k_t) * scale, -1), v);
}

// (B, H, W, C) -> max-pooled by `s` -> (B, H/s, W/s, C) (hieradet.py do_pool).
torch::Tensor pool_hw(const torch::Tensor& x, int64_t s) {
  return torch::max_pool2d(x.permute({0, 3, 1, 2}), {s, s}, {s, s}).permute({0, 2, 3, 1});
}

}  // namespace

void set_attention_score_budget(int64_t floats) { g_score_budget = std::max<int64_t>(1, floats); }
int64_t attention_score_budget() { return g_score_budget.load(); }

// The math definition of F.scaled_dot_product_attention (default scale 1/sqrt(d), no mask): the
// fixture's reference ran exactly this. Rows of a softmax are independent, so the blocked path
// gives the one-shot numbers up to the GEMM's rounding.
torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const auto k_t = k.transpose(-2, -1);
  const int64_t nq = q.size(-2), nk = k.size(-2);
  const int64_t maps = q.numel() / std::max<int64_t>(1, nq * q.size(-1));  // batch x heads
  const int64_t rows = std::max<int64_t>(1, g_score_budget.load() / std::max<int64_t>(1, maps * nk));
  if (rows >= nq || torch::GradMode::is_enabled()) return attention_rows(q, k_t, v, scale);
  auto out = torch::empty(q.sizes(), q.options());
  for (int64_t s = 0; s < nq; s += rows) {
    const int64_t r = std::min(nq, s + rows) - s;
    out.narrow(-2, s, r).copy_(attention_rows(q.narrow(-2, s, r), k_t, v, scale));
  }
  return out;
}

PatchEmbedImpl::PatchEmbedImpl(int64_t in_chans, int64_t embed_dim, int64_t kernel, int64_t stride, int64_t padding) {
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, embed_dim, kernel).stride(stride).padding(padding)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  return (proj_hook ? proj_hook(x) : proj->forward(x)).permute({0, 2, 3, 1});
}

HieraMlpImpl::HieraMlpImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers) {
  for (int64_t i = 0; i < num_layers; ++i)
    layers->push_back(torch::nn::Linear(i == 0 ? input_dim : hidden_dim, i == num_layers - 1 ? output_dim : hidden_dim));
  register_module("layers", layers);
}

torch::Tensor HieraMlpImpl::forward(torch::Tensor x) {
  const size_t n = layers->size();
  for (size_t i = 0; i < n; ++i) {
    x = layers[i]->as<torch::nn::Linear>()->forward(x);
    if (i + 1 < n) x = sam::gelu_act(x);
  }
  return x;
}

MultiScaleAttentionImpl::MultiScaleAttentionImpl(int64_t dim, int64_t dim_out_, int64_t heads, int64_t q_stride_)
    : num_heads(heads), dim_out(dim_out_), q_stride(q_stride_) {
  qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim_out));
  proj = register_module("proj", torch::nn::Linear(dim_out, dim_out));
}

// ref: hieradet.py MultiScaleAttention.forward
torch::Tensor MultiScaleAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0);
  int64_t H = x.size(1), W = x.size(2);
  const auto qkv_ = (qkv_hook ? qkv_hook(x) : qkv->forward(x)).reshape({B, H * W, 3, num_heads, -1});
  const auto parts = qkv_.unbind(2);  // q, k, v: [B, HW, heads, hd]
  auto q = parts[0];
  if (q_stride > 0) {
    q = pool_hw(q.reshape({B, H, W, -1}), q_stride);
    H = q.size(1), W = q.size(2);
    q = q.reshape({B, H * W, num_heads, -1});
  }
  auto out = scaled_dot_product_attention(q.transpose(1, 2), parts[1].transpose(1, 2), parts[2].transpose(1, 2));
  out = out.transpose(1, 2).reshape({B, H, W, -1});
  return proj_hook ? proj_hook(out) : proj->forward(out);
}

MultiScaleBlockImpl::MultiScaleBlockImpl(const models::HieraBlockSpec& s, double mlp_ratio, int64_t q_stride_)
    : spec(s), q_stride(s.q_pool ? q_stride_ : 0) {
  auto ln = [](int64_t d) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-6)); };
  norm1 = register_module("norm1", ln(s.dim));
  attn = register_module("attn", MultiScaleAttention(s.dim, s.dim_out, s.heads, q_stride));
  norm2 = register_module("norm2", ln(s.dim_out));
  mlp = register_module("mlp", HieraMlp(s.dim_out, static_cast<int64_t>(s.dim_out * mlp_ratio), s.dim_out, 2));
  if (s.dim != s.dim_out) proj = register_module("proj", torch::nn::Linear(s.dim, s.dim_out));
}

// ref: hieradet.py MultiScaleBlock.forward
torch::Tensor MultiScaleBlockImpl::forward(const torch::Tensor& x_in) {
  auto shortcut = x_in;
  auto x = norm1->forward(x_in);
  if (spec.dim != spec.dim_out) {
    shortcut = proj_hook ? proj_hook(x) : proj->forward(x);
    if (q_stride > 0) shortcut = pool_hw(shortcut, q_stride);
  }
  int64_t ws = spec.window;
  int64_t H = x.size(1), W = x.size(2);
  std::pair<int64_t, int64_t> pad_hw{H, W};
  if (ws > 0) std::tie(x, pad_hw) = sam::window_partition(x, ws);
  x = attn->forward(x);
  if (q_stride > 0) {
    // The windows shrank with q: un-partition with the pooled window over the pooled grid.
    ws = spec.window / q_stride;
    H = shortcut.size(1), W = shortcut.size(2);
    if (ws > 0) pad_hw = {H + (ws - H % ws) % ws, W + (ws - W % ws) % ws};
  }
  if (spec.window > 0) x = sam::window_unpartition(x, ws, pad_hw, H, W);
  x = shortcut + x;
  return x + mlp->forward(norm2->forward(x));
}

HieraImpl::HieraImpl(const models::HieraConfig& c) : cfg(c), stage_ends(c.stage_ends()) {
  patch_embed = register_module(
      "patch_embed", PatchEmbed(c.in_chans, c.embed_dim, c.patch_kernel, c.patch_stride, c.patch_padding));
  if (c.bbox_mask_in_chans > 0)
    bbox_mask_patch_embed = register_module(
        "bbox_mask_patch_embed",
        PatchEmbed(c.bbox_mask_in_chans, c.embed_dim, c.patch_kernel, c.patch_stride, c.patch_padding));
  const auto& bkg = c.window_pos_embed_bkg_spatial_size;
  pos_embed = register_parameter("pos_embed", torch::zeros({1, c.embed_dim, bkg.at(0), bkg.at(1)}));
  const int64_t w0 = c.window_spec.at(0);
  pos_embed_window = register_parameter("pos_embed_window", torch::zeros({1, c.embed_dim, w0, w0}));
  for (const auto& s : models::hiera_blocks(c)) blocks->push_back(MultiScaleBlock(s, c.mlp_ratio, c.q_stride));
  register_module("blocks", blocks);
}

// ref: hieradet.py Hiera._get_pos_embed
torch::Tensor HieraImpl::get_pos_embed(int64_t h, int64_t w) {
  const int64_t ws = pos_embed_window.size(2);
  SEMAT_CHECK(h % ws == 0 && w % ws == 0, InvalidArgument,
              "Hiera: the " << h << "x" << w << " token grid is not a multiple of the " << ws
                            << "-token window position embedding (the input side must be a multiple of "
                            << ws * cfg.patch_stride << ")");
  auto pos = F::interpolate(pos_embed, F::InterpolateFuncOptions()
                                           .size(std::vector<int64_t>{h, w})
                                           .mode(torch::kBicubic)
                                           .align_corners(false));
  pos = pos + pos_embed_window.tile({1, 1, h / ws, w / ws});
  return pos.permute({0, 2, 3, 1});
}

std::vector<torch::Tensor> HieraImpl::forward(const torch::Tensor& x, const torch::Tensor& extra_embedding) {
  auto tokens = patch_embed->forward(x);
  if (extra_embedding.defined()) tokens = tokens + extra_embedding;
  return forward_tokens(tokens);
}

// ref: hieradet.py Hiera.forward (return_interm_layers=True)
std::vector<torch::Tensor> HieraImpl::forward_tokens(const torch::Tensor& tokens) {
  auto x = tokens + get_pos_embed(tokens.size(1), tokens.size(2));
  std::vector<torch::Tensor> outputs;
  size_t next_end = 0;
  for (size_t i = 0; i < blocks->size(); ++i) {
    x = blocks[i]->as<MultiScaleBlock>()->forward(x);
    if (next_end < stage_ends.size() && static_cast<int64_t>(i) == stage_ends[next_end]) {
      outputs.push_back(x.permute({0, 3, 1, 2}));
      ++next_end;
    }
  }
  return outputs;
}

}  // namespace semat::models::sam2
