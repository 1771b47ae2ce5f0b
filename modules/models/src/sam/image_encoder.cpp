#include "semat/models/internal/sam/image_encoder.h"

#include <torch/torch.h>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "semat/models/internal/row_kernels.h"
#include "semat/models/internal/sam/autocast.h"

namespace semat::models::sam {
namespace F = torch::nn::functional;
namespace {

// A named range for LibTorch's profiler (BM_SamEncoderProfile reads them to split an encoder pass
// into its parts); a few flag checks when no profiler runs.
#define SEMAT_PROFILE_CAT_(a, b) a##b
#define SEMAT_PROFILE_VAR_(line) SEMAT_PROFILE_CAT_(semat_profile_range_, line)
#define SEMAT_PROFILE_RANGE(name)                                                    \
  at::RecordFunction SEMAT_PROFILE_VAR_(__LINE__)(at::RecordScope::USER_SCOPE);      \
  if (SEMAT_PROFILE_VAR_(__LINE__).isActive())                                       \
  ::at::detail::record_function_with_scope(SEMAT_PROFILE_VAR_(__LINE__), name,       \
                                           c10::ArrayRef<const c10::IValue>{})

// Scores of one block of queries are at most about this many floats: the full 4096 x 4096 maps
// of the global blocks are never materialised (they cost 0.8 GB per image for ViT-B and were
// the main cost of the official implementation on CPU).
std::atomic<int64_t> g_score_budget{8 << 20};

// Inference path of the global blocks: one thread per head (at::parallel_for), each working on
// blocks of kHeadRows queries whose [kHeadRows, N] score buffer stays in cache from the q k^T
// product through the position terms and the softmax to the product with v. 3.4x faster than
// batching all heads through full-width score maps on the 2-core machine (the maps are 33 MB a
// block and every elementwise pass went to DRAM). The position terms and the softmax are one
// row kernel (kernels::bias_softmax_rows: float32 arithmetic, one pass per row in L1) instead of
// LibTorch's five passes over the block (widen to float32, two broadcast adds, softmax, narrow):
// in bf16 those were 16% of the encoder's time on one thread (attn.bias 4.1% + most of
// attn.softmax 11.8% in BM_SamEncoderProfile/vit_b_bf16), the kernel runs at 0.47 ns a score.
// Not differentiable: training uses the batched path.
constexpr int64_t kHeadRows = 256;

torch::Tensor attention_by_head(const torch::Tensor& q_scaled, const torch::Tensor& k,
                                const torch::Tensor& v, const torch::Tensor& rel_h,
                                const torch::Tensor& rel_w, int64_t H, int64_t W) {
  const int64_t BH = q_scaled.size(0), N = q_scaled.size(1);
  const auto q = q_scaled.contiguous();
  // bf16: the products run in bf16 (float32 accumulation inside oneDNN), the scores are read as
  // float32 by the kernel and the probabilities rounded to bf16 once for the product with v.
  // Elsewhere (CUDA, other dtypes) LibTorch's ops do the same in float32.
  const bool bf16 = q.scalar_type() == torch::kBFloat16;
  const bool row_kernel = q.is_cpu() && (bf16 || q.scalar_type() == torch::kFloat);
  const auto rh = rel_h.to(torch::kFloat).contiguous();  // [BH, N, H]
  const auto rw = rel_w.to(torch::kFloat).contiguous();  // [BH, N, W]
  auto out = torch::empty_like(q);
  at::parallel_for(0, BH, 1, [&](int64_t b0, int64_t b1) {
    auto S = torch::empty({kHeadRows, N}, q.options());  // scores, then probabilities in place
    for (int64_t h = b0; h < b1; ++h) {
      const auto kt = k[h].t();
      const auto vh = v[h];
      for (int64_t s = 0; s < N; s += kHeadRows) {
        const int64_t r = std::min(N, s + kHeadRows) - s;
        auto Sv = S.narrow(0, 0, r);
        {
          SEMAT_PROFILE_RANGE("attn.qk");
          at::mm_out(Sv, q[h].narrow(0, s, r), kt);
        }
        if (!row_kernel) {
          SEMAT_PROFILE_RANGE("attn.softmax");
          auto Sa = Sv.to(torch::kFloat);
          Sa.view({r, H, W}).add_(rh[h].narrow(0, s, r).unsqueeze(-1)).add_(rw[h].narrow(0, s, r).unsqueeze(-2));
          Sv.copy_(torch::softmax(Sa, -1));
        } else {
          SEMAT_PROFILE_RANGE("attn.softmax");
          const float* rhp = rh.data_ptr<float>() + (h * N + s) * H;
          const float* rwp = rw.data_ptr<float>() + (h * N + s) * W;
          if (bf16) {
            auto* p = reinterpret_cast<kernels::bf16_bits*>(Sv.data_ptr<at::BFloat16>());
            kernels::bias_softmax_rows(p, rhp, rwp, r, H, W, p);
          } else {
            float* p = Sv.data_ptr<float>();
            kernels::bias_softmax_rows(p, rhp, rwp, r, H, W, p);
          }
        }
        SEMAT_PROFILE_RANGE("attn.av");
        auto o = out[h].narrow(0, s, r);
        at::mm_out(o, Sv, vh);
      }
    }
  });
  return out;
}

// Inference path of bf16 windows (and other short sequences): the relative-position terms ride
// in the q k^T product instead of being added to the scores. Each query row is extended by its
// rel_h and rel_w terms, each key row by the one-hot codes of its row and column, so that
//   [q * scale, rel_h(q), rel_w(q)] . [k, onehot(kh), onehot(kw)] = q k^T * scale + rel_h(q, kh) + rel_w(q, kw)
// comes out of one GEMM, accumulated in float32 inside oneDNN and rounded to bf16 once (the
// broadcast adds rounded the scores twice more). The head size grows from 64 to 92 for 14 x 14
// windows, a small share of the encoder's FLOPs; the two broadcast adds over [BH, N, H, W]
// scores, the slowest part of the windowed blocks in bf16, are gone. The softmax is the row
// kernel (float32 arithmetic inside, one rounding to bf16; LibTorch's bf16 softmax, the same
// arithmetic, ran at 2.2 ns a score). Windows are taken kWindowGroup (window, head)
// pairs at a time, so one group's scores (25 x 196 x 196 bf16, 1.9 MB) stay in cache from the
// product through the softmax to the product with v.
constexpr int64_t kWindowGroup = 25;

torch::Tensor attention_folded_bias(const torch::Tensor& q_scaled, const torch::Tensor& k, const torch::Tensor& v,
                                    const torch::Tensor& rel_h, const torch::Tensor& rel_w, int64_t H, int64_t W) {
  const int64_t BH = q_scaled.size(0), N = q_scaled.size(1);
  const auto dtype = q_scaled.scalar_type();
  const auto key = torch::arange(N, q_scaled.options().dtype(torch::kLong));
  const auto row = torch::one_hot(key.div(W, "floor"), H).to(dtype);  // [N, H]: key n's row
  const auto col = torch::one_hot(key.remainder(W), W).to(dtype);    // [N, W]: its column
  const auto qa = torch::cat({q_scaled, rel_h.to(dtype), rel_w.to(dtype)}, -1);
  const auto ka = torch::cat({k, row.expand({BH, N, H}), col.expand({BH, N, W})}, -1);
  auto out = torch::empty({BH, N, v.size(2)}, v.options());
  const int64_t groups = (BH + kWindowGroup - 1) / kWindowGroup;
  at::parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t b = g * kWindowGroup, n = std::min(kWindowGroup, BH - b);
      torch::Tensor P;
      {
        SEMAT_PROFILE_RANGE("attn.qk");
        P = at::bmm(qa.narrow(0, b, n), ka.narrow(0, b, n).transpose(1, 2));
      }
      {
        SEMAT_PROFILE_RANGE("attn.softmax");
        if (!softmax_last_dim_in_place(P)) P = at::_softmax(P, -1, false);
      }
      SEMAT_PROFILE_RANGE("attn.av");
      auto o = out.narrow(0, b, n);
      at::bmm_out(o, P, v.narrow(0, b, n));
    }
  });
  return out;
}

// Activation checkpointing for one ViT block, the reentrant way (as torch.utils.checkpoint):
// the forward runs without recording a graph and keeps only the block's input, the RNG state
// (LoRA dropout) and the autocast state (bf16 training); backward replays the forward with
// gradients on under both and back-propagates through it, which also accumulates the block's
// parameter gradients.
struct CheckpointedBlock : torch::autograd::Function<CheckpointedBlock> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, int64_t block_ptr) {
    ctx->saved_data["block"] = block_ptr;
    {
      at::Generator gen = generator_for(x);
      std::lock_guard<std::mutex> lock(gen.mutex());
      ctx->saved_data["rng"] = gen.get_state();
    }
    const auto ac = AutocastState::current();
    ctx->saved_data["autocast"] = std::vector<int64_t>{ac.cuda, ac.cpu, static_cast<int64_t>(ac.cuda_dtype),
                                                       static_cast<int64_t>(ac.cpu_dtype)};
    ctx->save_for_backward({x});
    return reinterpret_cast<BlockImpl*>(block_ptr)->forward(x);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto* block = reinterpret_cast<BlockImpl*>(ctx->saved_data["block"].toInt());
    const auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    const auto a = ctx->saved_data["autocast"].toIntVector();
    AutocastState ac;
    ac.cuda = a[0] != 0, ac.cpu = a[1] != 0;
    ac.cuda_dtype = static_cast<at::ScalarType>(a[2]), ac.cpu_dtype = static_cast<at::ScalarType>(a[3]);
    at::Generator gen = generator_for(x);
    torch::Tensor y;
    {
      // The replay must not shift the random numbers drawn after it: restore on every exit.
      // (The generator's mutex is held only around the state swaps: dropout takes it too.)
      torch::Tensor now;
      {
        std::lock_guard<std::mutex> lock(gen.mutex());
        now = gen.get_state();
        gen.set_state(ctx->saved_data["rng"].toTensor());
      }
      struct Restore {
        at::Generator& g;
        const torch::Tensor& s;
        ~Restore() {
          std::lock_guard<std::mutex> lock(g.mutex());
          g.set_state(s);
        }
      } restore{gen, now};
      torch::AutoGradMode grad(true);
      AutocastScope autocast(ac);
      y = block->forward(x);
    }
    torch::autograd::backward({y}, {grads[0]});
    return {x.grad(), torch::Tensor()};
  }

  static at::Generator generator_for(const torch::Tensor& x) {
    return x.is_cuda() ? at::globalContext().defaultGenerator(x.device())
                       : at::detail::getDefaultCPUGenerator();
  }
};

}  // namespace

// ref: image_encoder.py get_rel_pos. Relative position embeddings for every (query, key) pair
// along one axis: [q_size, k_size, head_dim].
torch::Tensor get_rel_pos(int64_t q_size, int64_t k_size, const torch::Tensor& rel_pos) {
  const int64_t max_rel_dist = 2 * std::max(q_size, k_size) - 1;
  torch::Tensor resized = rel_pos;
  if (rel_pos.size(0) != max_rel_dist) {
    resized = F::interpolate(rel_pos.reshape({1, rel_pos.size(0), -1}).permute({0, 2, 1}),
                             F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{max_rel_dist})
                                 .mode(torch::kLinear)
                                 .align_corners(false))
                  .reshape({-1, max_rel_dist})
                  .permute({1, 0});
  }
  const double qs = std::max(static_cast<double>(k_size) / q_size, 1.0);
  const double ks = std::max(static_cast<double>(q_size) / k_size, 1.0);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64).device(rel_pos.device());
  const auto q_coords = torch::arange(q_size, opts).unsqueeze(1) * qs;
  const auto k_coords = torch::arange(k_size, opts).unsqueeze(0) * ks;
  const auto rel = (q_coords - k_coords) + (k_size - 1) * ks;
  return resized.index({rel.to(torch::kLong)});
}

// ref: image_encoder.py window_partition / window_unpartition (also ViTDet's, used by ViTMatte).
std::pair<torch::Tensor, std::pair<int64_t, int64_t>> window_partition(const torch::Tensor& x,
                                                                        int64_t ws) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t pad_h = (ws - H % ws) % ws, pad_w = (ws - W % ws) % ws;
  torch::Tensor y = x;
  if (pad_h > 0 || pad_w > 0) y = F::pad(x, F::PadFuncOptions({0, 0, 0, pad_w, 0, pad_h}));
  const int64_t Hp = H + pad_h, Wp = W + pad_w;
  y = y.view({B, Hp / ws, ws, Wp / ws, ws, C}).permute({0, 1, 3, 2, 4, 5}).contiguous();
  return {y.view({-1, ws, ws, C}), {Hp, Wp}};
}

torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t ws,
                                 std::pair<int64_t, int64_t> pad_hw, int64_t H, int64_t W) {
  const auto [Hp, Wp] = pad_hw;
  const int64_t B = windows.size(0) / (Hp * Wp / ws / ws);
  auto x = windows.view({B, Hp / ws, Wp / ws, ws, ws, -1}).permute({0, 1, 3, 2, 4, 5}).contiguous();
  x = x.view({B, Hp, Wp, -1});
  if (Hp > H || Wp > W) x = x.index({torch::indexing::Slice(), torch::indexing::Slice(0, H),
                                      torch::indexing::Slice(0, W)}).contiguous();
  return x;
}

void set_attention_score_budget(int64_t floats) { g_score_budget = std::max<int64_t>(1, floats); }
int64_t attention_score_budget() { return g_score_budget.load(); }

PatchEmbedImpl::PatchEmbedImpl(int64_t patch, int64_t in_chans, int64_t embed_dim) {
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, embed_dim, patch).stride(patch)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  // bf16 inference (ImageEncoderViTImpl::set_compute_dtype): the float32 image meets bf16 weights.
  const auto wt = proj->weight.scalar_type();
  const auto& in = wt == torch::kBFloat16 && x.scalar_type() != wt ? x.to(wt) : x;
  return (proj_hook ? proj_hook(in) : proj->forward(in)).permute({0, 2, 3, 1});
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads, int64_t input_size) : num_heads(heads) {
  qkv = register_module("qkv", make_linear(dim, 3 * dim));
  proj = register_module("proj", make_linear(dim, dim));
  const int64_t head_dim = dim / heads;
  rel_pos_h = register_parameter("rel_pos_h", torch::zeros({2 * input_size - 1, head_dim}));
  rel_pos_w = register_parameter("rel_pos_w", torch::zeros({2 * input_size - 1, head_dim}));
}

// ref: image_encoder.py Attention.forward + add_decomposed_rel_pos, computed in blocks of
// queries: scores = (q * scale) k^T + rel_h + rel_w, softmax, @ v, block by block.
torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), N = H * W;
  torch::Tensor qkv_;
  {
    SEMAT_PROFILE_RANGE("attn.qkv");
    qkv_ = (qkv_hook ? qkv_hook(x) : linear_rows(qkv, x));
  }
  SEMAT_PROFILE_RANGE("attn.heads");  // split into heads; rel-pos terms; scores, softmax, @ v
  const auto parts = qkv_.reshape({B, N, 3, num_heads, -1})
                         .permute({2, 0, 3, 1, 4})
                         .reshape({3, B * num_heads, N, -1})
                         .unbind(0);
  const auto& q = parts[0];
  const auto& k = parts[1];
  const auto& v = parts[2];
  const int64_t BH = B * num_heads, hd = q.size(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));

  // rel_h[b, qh, qw, kh] = sum_c q[b, qh, qw, c] Rh[qh, kh, c] (unscaled q), likewise rel_w.
  const auto Rh = get_rel_pos(H, H, rel_pos_h);
  const auto Rw = get_rel_pos(W, W, rel_pos_w);
  torch::Tensor rel_h, rel_w;
  {
    SEMAT_PROFILE_RANGE("attn.relpos");
    const auto r_q = q.reshape({BH, H, W, hd});
    rel_h = torch::einsum("bhwc,hkc->bhwk", {r_q, Rh}).reshape({BH, N, H, 1});
    rel_w = torch::einsum("bhwc,wkc->bhwk", {r_q, Rw}).reshape({BH, N, 1, W});
  }
  SEMAT_PROFILE_RANGE("attn.core");

  torch::Tensor out;
  if (!torch::GradMode::is_enabled() && N > 1024) {
    out = attention_by_head(q * scale, k, v, rel_h.reshape({BH, N, H}), rel_w.reshape({BH, N, W}), H, W);
  } else if (!torch::GradMode::is_enabled() && q.scalar_type() == torch::kBFloat16) {
    out = attention_folded_bias(q * scale, k, v, rel_h.reshape({BH, N, H}), rel_w.reshape({BH, N, W}), H, W);
  } else {
    const auto k_t = k.transpose(-2, -1);
    const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(N, g_score_budget.load() / (BH * N)));
    if (rows >= N && q.scalar_type() != torch::kFloat) {
      // bf16 (the windowed blocks at inference): scores widened to float32 for the position
      // terms and the softmax, as in attention_by_head. (Taking this branch for all windows at
      // once regardless of the budget looked 2.8x faster in a Python micro-benchmark but raised
      // attn.bias from 6% to 38% of BM_SamEncoderProfile on the loaded machine: not kept.)
      torch::Tensor attn;
      {
        SEMAT_PROFILE_RANGE("attn.qk");
        attn = torch::matmul(q * scale, k_t);
      }
      {
        SEMAT_PROFILE_RANGE("attn.bias");
        attn = attn.view({BH, N, H, W}).to(torch::kFloat);
        attn = (attn + rel_h.to(torch::kFloat) + rel_w.to(torch::kFloat)).view({BH, N, N});
      }
      {
        SEMAT_PROFILE_RANGE("attn.softmax");
        attn = torch::softmax(attn, -1).to(q.scalar_type());
      }
      SEMAT_PROFILE_RANGE("attn.av");
      out = torch::matmul(attn, v);
    } else if (rows >= N) {
      auto attn = torch::matmul(q * scale, k_t).view({BH, N, H, W});
      attn = (attn + rel_h + rel_w).view({BH, N, N});
      out = torch::matmul(torch::softmax(attn, -1), v);
    } else {
      out = torch::empty_like(q);
      using torch::indexing::Slice;
      for (int64_t s = 0; s < N; s += rows) {
        const int64_t e = std::min(N, s + rows);
        auto attn = torch::matmul(q.index({Slice(), Slice(s, e)}) * scale, k_t).view({BH, e - s, H, W});
        attn = (attn + rel_h.index({Slice(), Slice(s, e)}) + rel_w.index({Slice(), Slice(s, e)}))
                   .view({BH, e - s, N});
        out.index_put_({Slice(), Slice(s, e)}, torch::matmul(torch::softmax(attn, -1), v));
      }
    }
  }
  {
    SEMAT_PROFILE_RANGE("attn.merge");
    out = out.view({B, num_heads, H, W, -1}).permute({0, 2, 3, 1, 4}).reshape({B, H, W, -1});
  }
  SEMAT_PROFILE_RANGE("attn.proj");
  return proj_hook ? proj_hook(out) : linear_rows(proj, out);
}

BlockImpl::BlockImpl(const ImageEncoderConfig& cfg, int64_t ws) : window_size(ws) {
  const int64_t dim = cfg.embed_dim;
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  attn = register_module("attn", Attention(dim, cfg.num_heads, ws > 0 ? ws : cfg.grid()));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));
  mlp = register_module("mlp", MLPBlock(dim, static_cast<int64_t>(dim * cfg.mlp_ratio), Activation::kGelu));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  {
    SEMAT_PROFILE_RANGE("norm1");
    y = layer_norm_rows(norm1, x);
  }
  if (window_size > 0) {
    const int64_t H = y.size(1), W = y.size(2);
    torch::Tensor win;
    std::pair<int64_t, int64_t> pad_hw;
    {
      SEMAT_PROFILE_RANGE("win.partition");
      std::tie(win, pad_hw) = window_partition(y, window_size);
    }
    y = attn->forward(win);
    SEMAT_PROFILE_RANGE("win.unpartition");
    y = window_unpartition(y, window_size, pad_hw, H, W);
  } else {
    y = attn->forward(y);
  }
  torch::Tensor h, n;
  {
    SEMAT_PROFILE_RANGE("residual");
    h = x + y;
  }
  {
    SEMAT_PROFILE_RANGE("norm2");
    n = layer_norm_rows(norm2, h);
  }
  n = mlp->forward(n);
  SEMAT_PROFILE_RANGE("residual");
  return h + n;
}

ImageEncoderViTImpl::ImageEncoderViTImpl(const ImageEncoderConfig& c) : cfg(c) {
  patch_embed = register_module("patch_embed", PatchEmbed(c.patch_size, c.in_chans, c.embed_dim));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, c.grid(), c.grid(), c.embed_dim}));
  for (int64_t i = 0; i < c.depth; ++i) {
    const bool global = std::find(c.global_attn_indexes.begin(), c.global_attn_indexes.end(), i) !=
                        c.global_attn_indexes.end();
    blocks->push_back(Block(c, global ? 0 : c.window_size));
  }
  register_module("blocks", blocks);
  neck = register_module(
      "neck",
      torch::nn::Sequential(
          torch::nn::Conv2d(torch::nn::Conv2dOptions(c.embed_dim, c.out_chans, 1).bias(false)),
          LayerNorm2d(c.out_chans),
          torch::nn::Conv2d(torch::nn::Conv2dOptions(c.out_chans, c.out_chans, 3).padding(1).bias(false)),
          LayerNorm2d(c.out_chans)));
}

EncoderOutput ImageEncoderViTImpl::forward_features(const torch::Tensor& img) {
  torch::Tensor tokens;
  {
    SEMAT_PROFILE_RANGE("patch_embed");
    tokens = patch_embed->forward(img);
  }
  return forward_tokens(tokens);
}

void ImageEncoderViTImpl::set_compute_dtype(torch::ScalarType dtype, bool convert) {
  if (dtype == compute_dtype) return;
  torch::NoGradGuard no_grad;
  if (convert) {
    patch_embed->to(dtype);
    blocks->to(dtype);
    pos_embed.set_data(pos_embed.to(dtype));
  } else {
    // set_data keeps each parameter's identity (the module's member and its registered entry
    // share it), as Module::to does.
    auto fresh = [dtype](torch::Tensor& t) { t.set_data(torch::empty(t.sizes(), t.options().dtype(dtype))); };
    for (auto& p : patch_embed->parameters()) fresh(p);
    for (auto& b : patch_embed->buffers()) fresh(b);
    for (auto& p : blocks->parameters()) fresh(p);
    for (auto& b : blocks->buffers()) fresh(b);
    fresh(pos_embed);
  }
  compute_dtype = dtype;
}

EncoderOutput ImageEncoderViTImpl::forward_tokens(const torch::Tensor& tokens, bool checkpoint_blocks) {
  // Reduced precision (bf16 inference): the tokens enter the blocks in bf16 (a no-op after a bf16
  // patch embedding) and stay bf16 through every block; only what leaves the encoder goes back to
  // float32: the global blocks' outputs (HQ-SAM, SEMat decoders) and the neck's input.
  // The patch embedding's tokens are a permuted view of its [B, C, H, W] output, and elementwise
  // ops keep their first operand's layout: without a copy to [B, H, W, C] order the whole
  // residual stream stays channel-major through every block (layer norms striding by H * W,
  // every linear copying its input first). bf16 inference needs the dense rows (its row kernels
  // and 2-D linears take contiguous tokens only) and gets them here. float32 keeps the permuted
  // layout: there it made no measurable difference to the encoder's time, and in training the
  // dense layout cut Trainer.OverfitsFourScenes' loss drop from 57% to 15% over its 24
  // iterations. The blocks give bit-identical results either way; the difference comes from the
  // channels-last features the neck and SEMat's decoders then receive (not understood yet).
  const bool reduced = compute_dtype != torch::kFloat;
  auto x = (reduced ? tokens.to(compute_dtype).contiguous() : tokens) + pos_embed;
  EncoderOutput out;
  for (const auto& m : *blocks) {
    auto block = m->as<Block>();
    if (checkpoint_blocks && torch::GradMode::is_enabled() && x.requires_grad())
      x = CheckpointedBlock::apply(x, reinterpret_cast<int64_t>(block));
    else
      x = block->forward(x);
    if (block->window_size == 0) out.global_blocks.push_back(reduced ? x.to(torch::kFloat) : x);
  }
  SEMAT_PROFILE_RANGE("neck");
  out.embedding = neck->forward((reduced ? x.to(torch::kFloat) : x).permute({0, 3, 1, 2}));
  return out;
}

}  // namespace semat::models::sam
