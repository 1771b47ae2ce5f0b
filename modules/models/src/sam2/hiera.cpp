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

// softmax over the last axis of bf16 scores with float32 arithmetic and one rounding to bf16:
// the row kernel on CPU (in place, rows split over the threads), LibTorch's float32 softmax
// elsewhere (CUDA) or for non-contiguous scores.
torch::Tensor softmax_bf16(torch::Tensor s) {
  if (sam::softmax_last_dim_in_place(s)) return s;
  return torch::softmax(s, -1, torch::kFloat).to(torch::kBFloat16);
}

torch::Tensor attention_rows(const torch::Tensor& q, const torch::Tensor& k_t, const torch::Tensor& v, double scale) {
  if (q.scalar_type() == torch::kBFloat16) {
    // bf16 (HieraImpl::set_compute_dtype): the products run in bf16 with float32 accumulation
    // (oneDNN); the scale goes onto q (exact for head sizes 64 / 256, one rounding of q
    // otherwise), so the scores are rounded once, and the softmax is computed in float32.
    return torch::matmul(softmax_bf16(torch::matmul(q * scale, k_t)), v);
  }
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
  // bf16 inference (HieraImpl::set_compute_dtype): the float32 image meets bf16 weights.
  const auto wt = proj->weight.scalar_type();
  const auto& in = wt == torch::kBFloat16 && x.scalar_type() != wt ? x.to(wt) : x;
  return (proj_hook ? proj_hook(in) : proj->forward(in)).permute({0, 2, 3, 1});
}

HieraMlpImpl::HieraMlpImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers) {
  for (int64_t i = 0; i < num_layers; ++i)
    layers->push_back(torch::nn::Linear(i == 0 ? input_dim : hidden_dim, i == num_layers - 1 ? output_dim : hidden_dim));
  register_module("layers", layers);
}

torch::Tensor HieraMlpImpl::forward(torch::Tensor x) {
  const size_t n = layers->size();
  for (size_t i = 0; i < n; ++i) {
    torch::nn::Linear layer(layers->ptr<torch::nn::LinearImpl>(i));
    x = sam::linear_rows(layer, x);  // float32: layer->forward; bf16: one GEMM over the rows
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
  const auto qkv_ = (qkv_hook ? qkv_hook(x) : sam::linear_rows(qkv, x)).reshape({B, H * W, 3, num_heads, -1});
  const auto parts = qkv_.unbind(2);  // q, k, v: [B, HW, heads, hd]
  auto q = parts[0];
  if (q_stride > 0) {
    q = pool_hw(q.reshape({B, H, W, -1}), q_stride);
    H = q.size(1), W = q.size(2);
    q = q.reshape({B, H * W, num_heads, -1});
  }
  auto out = scaled_dot_product_attention(q.transpose(1, 2), parts[1].transpose(1, 2), parts[2].transpose(1, 2));
  out = out.transpose(1, 2).reshape({B, H, W, -1});
  return proj_hook ? proj_hook(out) : sam::linear_rows(proj, out);
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
  // float32: LibTorch's modules. bf16: float32 arithmetic inside the layer norms (row kernel;
  // LibTorch 1.13's bf16 layer_norm is ~10x slower), linears over 2-D row views.
  const bool reduced = x_in.scalar_type() == torch::kBFloat16;
  auto shortcut = x_in;
  auto x = sam::layer_norm_rows(norm1, x_in);
  if (spec.dim != spec.dim_out) {
    shortcut = proj_hook ? proj_hook(x) : sam::linear_rows(proj, x);
    if (q_stride > 0) shortcut = pool_hw(shortcut, q_stride);
    // The pooled shortcut is a permuted view of max_pool2d's output, whose layout the residual
    // sum below would inherit (the row kernels need contiguous channel-last rows): made dense
    // (a no-op when max_pool2d already kept the channel-last layout).
    if (reduced) shortcut = shortcut.contiguous();
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
  return x + mlp->forward(sam::layer_norm_rows(norm2, x));
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
  // bf16: the bicubic resize and the sum run on float32 copies, rounded once at the end.
  auto pos = F::interpolate(pos_embed.to(torch::kFloat), F::InterpolateFuncOptions()
                                           .size(std::vector<int64_t>{h, w})
                                           .mode(torch::kBicubic)
                                           .align_corners(false));
  pos = pos + pos_embed_window.to(torch::kFloat).tile({1, 1, h / ws, w / ws});
  return pos.permute({0, 2, 3, 1}).to(pos_embed.scalar_type());
}

std::vector<torch::Tensor> HieraImpl::forward(const torch::Tensor& x, const torch::Tensor& extra_embedding) {
  auto tokens = patch_embed->forward(x);
  if (extra_embedding.defined()) tokens = tokens + extra_embedding;
  return forward_tokens(tokens);
}

void HieraImpl::set_compute_dtype(torch::ScalarType dtype, bool convert) {
  if (dtype == compute_dtype) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors{pos_embed, pos_embed_window};
  auto add = [&tensors](const torch::nn::Module& m) {
    for (auto& p : m.parameters()) tensors.push_back(p);
    for (auto& b : m.buffers()) tensors.push_back(b);
  };
  add(*patch_embed);
  add(*blocks);
  if (!bbox_mask_patch_embed.is_empty()) add(*bbox_mask_patch_embed);  // SEMat only
  // set_data keeps each tensor's identity (the module's member and its registered entry share
  // it), as Module::to does; without `convert` the values are left for the loader to write.
  for (auto& t : tensors)
    t.set_data(convert ? t.to(dtype) : torch::empty(t.sizes(), t.options().dtype(dtype)));
  compute_dtype = dtype;
}

// ref: hieradet.py Hiera.forward (return_interm_layers=True)
std::vector<torch::Tensor> HieraImpl::forward_tokens(const torch::Tensor& tokens) {
  // bf16: the tokens enter the blocks in bf16 (a no-op after a bf16 patch embedding), laid out
  // channel-last once (the patch embedding's tokens are a permuted view of its NCHW output) and
  // stay bf16 through every block; the stage outputs go back to float32 for the FPN neck.
  const bool reduced = compute_dtype != torch::kFloat;
  auto x = (reduced ? tokens.to(compute_dtype).contiguous() : tokens) + get_pos_embed(tokens.size(1), tokens.size(2));
  std::vector<torch::Tensor> outputs;
  size_t next_end = 0;
  for (size_t i = 0; i < blocks->size(); ++i) {
    x = blocks[i]->as<MultiScaleBlock>()->forward(x);
    if (next_end < stage_ends.size() && static_cast<int64_t>(i) == stage_ends[next_end]) {
      outputs.push_back(reduced ? x.permute({0, 3, 1, 2}).to(torch::kFloat) : x.permute({0, 3, 1, 2}));
      ++next_end;
    }
  }
  return outputs;
}

}  // namespace semat::models::sam2
