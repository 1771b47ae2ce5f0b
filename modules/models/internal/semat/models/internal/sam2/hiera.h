// SAM 2's Hiera trunk (sam2/modeling/backbones/hieradet.py): a hierarchical ViT over channel-last
// [B, H, W, C] token grids, windowed attention without relative positions, q max-pooling at stage
// changes. Submodules carry the Python attribute names (patch_embed.proj, pos_embed,
// pos_embed_window, blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.layers.K,proj}).
#pragma once

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "semat/models/internal/sam/common.h"
#include "semat/models/sam2_config.h"

namespace semat::models::sam2 {

using sam::LayerHook;

/// The one attention kernel of SAM 2 (F.scaled_dot_product_attention without mask or dropout):
/// softmax(q k^T / sqrt(d)) v over q [B, h, Nq, d], k and v [B, h, Nk, d] -> [B, h, Nq, d].
/// Without gradients, long query sequences run in blocks of rows whose score maps stay under
/// `attention_score_budget()` floats (same maths, bounded memory).
torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
void set_attention_score_budget(int64_t floats);  ///< default 32M floats (128 MB)
int64_t attention_score_budget();

/// Conv2d(in_chans -> embed_dim, kernel, stride, padding) and a permute to [B, H', W', D].
/// Also SEMat's `bbox_mask_patch_embed` (in_chans 4).
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t in_chans, int64_t embed_dim, int64_t kernel = 7, int64_t stride = 4, int64_t padding = 3);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d proj{nullptr};
  LayerHook proj_hook;  ///< when set, called instead of proj (LoRA)
};
TORCH_MODULE(PatchEmbed);

/// sam2's MLP as Hiera uses it: `num_layers` Linears (layers.K) with exact GELU between them.
class HieraMlpImpl : public torch::nn::Module {
 public:
  HieraMlpImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ModuleList layers;
};
TORCH_MODULE(HieraMlp);

/// MultiScaleAttention: qkv Linear(dim -> 3 dim_out), optional 2x2 max-pool of q (per window),
/// attention, proj Linear(dim_out -> dim_out).
class MultiScaleAttentionImpl : public torch::nn::Module {
 public:
  MultiScaleAttentionImpl(int64_t dim, int64_t dim_out, int64_t num_heads, int64_t q_stride);
  /// [B, H, W, dim] -> [B, H / q_stride, W / q_stride, dim_out] (q_stride 0: no pooling).
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  LayerHook qkv_hook, proj_hook;  ///< when set, called instead of qkv / proj (LoRA)
  int64_t num_heads, dim_out, q_stride;
};
TORCH_MODULE(MultiScaleAttention);

class MultiScaleBlockImpl : public torch::nn::Module {
 public:
  MultiScaleBlockImpl(const models::HieraBlockSpec& spec, double mlp_ratio, int64_t q_stride);
  /// [B, H, W, dim] -> [B, H', W', dim_out] (H' = H / q_stride at q-pool blocks).
  torch::Tensor forward(const torch::Tensor& x);

  models::HieraBlockSpec spec;
  int64_t q_stride;  ///< 0 unless spec.q_pool
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  MultiScaleAttention attn{nullptr};
  HieraMlp mlp{nullptr};
  torch::nn::Linear proj{nullptr};  ///< dim != dim_out only: the shortcut's projection
  LayerHook proj_hook;              ///< when set, called instead of proj (LoRA)
};
TORCH_MODULE(MultiScaleBlock);

class HieraImpl : public torch::nn::Module {
 public:
  explicit HieraImpl(const models::HieraConfig& cfg);

  /// `x`: normalised images [B, in_chans, S, S]. `extra_embedding` (optional): a tensor added
  /// to patch_embed(x) before the position embedding, [B, S/4, S/4, D] channel-last (SEMat's
  /// bbox_mask_patch_embed output). Returns the stage outputs, finest first, NCHW:
  /// [B, C_k, S/4/2^k, S/4/2^k].
  std::vector<torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& extra_embedding = {});
  /// Everything after the patch embedding: tokens [B, h, w, D] + pos(h, w), then the blocks.
  /// The stage outputs are float32 whatever compute_dtype is.
  std::vector<torch::Tensor> forward_tokens(const torch::Tensor& tokens);
  /// bicubic(pos_embed -> (h, w), align_corners=False) + pos_embed_window tiled, [1, h, w, D].
  /// h and w must be multiples of window_spec[0].
  torch::Tensor get_pos_embed(int64_t h, int64_t w);
  /// Reduced-precision inference (bf16), as sam::ImageEncoderViTImpl::set_compute_dtype: the
  /// patch embeddings, both position embeddings and the blocks are converted to `dtype`
  /// (`convert` = false: only re-typed, for a strict load that overwrites every value next);
  /// forward_tokens then keeps the tokens in `dtype` through the blocks and returns the stage
  /// outputs in float32 (the FPN neck and everything after it stay float32). Layer norms and the
  /// attention softmax use float32 arithmetic inside. Inference only.
  void set_compute_dtype(torch::ScalarType dtype, bool convert = true);

  torch::ScalarType compute_dtype = torch::kFloat;  ///< what the blocks run in

  models::HieraConfig cfg;
  std::vector<int64_t> stage_ends;
  PatchEmbed patch_embed{nullptr};
  PatchEmbed bbox_mask_patch_embed{nullptr};  ///< only when cfg.bbox_mask_in_chans > 0
  torch::Tensor pos_embed;         ///< [1, D, bkg_h, bkg_w]
  torch::Tensor pos_embed_window;  ///< [1, D, window_spec[0], window_spec[0]]
  torch::nn::ModuleList blocks;
};
TORCH_MODULE(Hiera);

}  // namespace semat::models::sam2
