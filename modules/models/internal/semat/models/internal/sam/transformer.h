// SAM's two-way transformer (segment_anything/modeling/transformer.py).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "semat/models/internal/sam/common.h"

namespace semat::models::sam {

/// Attention with separate q/k/v/out projections and an internal dim of dim / downsample_rate.
class TokenAttentionImpl : public torch::nn::Module {
 public:
  TokenAttentionImpl(int64_t embedding_dim, int64_t num_heads, int64_t downsample_rate = 1);
  /// q [B, Nq, E], k and v [B, Nk, E] -> [B, Nq, E].
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t num_heads;
};
TORCH_MODULE(TokenAttention);

class TwoWayAttentionBlockImpl : public torch::nn::Module {
 public:
  TwoWayAttentionBlockImpl(int64_t dim, int64_t heads, int64_t mlp_dim, bool skip_first_layer_pe);
  /// Updates queries [B, Nq, E] and keys [B, Nk, E] in place of the Python tuple return.
  void forward(torch::Tensor& queries, torch::Tensor& keys, const torch::Tensor& query_pe,
               const torch::Tensor& key_pe);

  TokenAttention self_attn{nullptr}, cross_attn_token_to_image{nullptr},
      cross_attn_image_to_token{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr}, norm4{nullptr};
  MLPBlock mlp{nullptr};
  bool skip_first_layer_pe;
};
TORCH_MODULE(TwoWayAttentionBlock);

class TwoWayTransformerImpl : public torch::nn::Module {
 public:
  TwoWayTransformerImpl(int64_t depth, int64_t dim, int64_t heads, int64_t mlp_dim);
  /// image [B, E, h, w], image_pe [B, E, h, w], tokens [B, N, E]; returns (queries [B, N, E],
  /// keys [B, h w, E]).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image,
                                                  const torch::Tensor& image_pe,
                                                  const torch::Tensor& tokens);

  torch::nn::ModuleList layers;
  TokenAttention final_attn_token_to_image{nullptr};
  torch::nn::LayerNorm norm_final_attn{nullptr};
};
TORCH_MODULE(TwoWayTransformer);

}  // namespace semat::models::sam
