// SAM's two-way transformer (segment_anything/modeling/transformer.py), also SAM 2's
// (sam2/modeling/sam/transformer.py): the same attention layers and order; only the blocks' MLP
// differs in its keys (BlockMlp).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
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

/// The MLP inside each two-way block, dim -> mlp_dim -> dim with ReLU either way: SAM's MLPBlock
/// (mlp.lin1, mlp.lin2) or SAM 2's MLP (mlp.layers.0, mlp.layers.1).
enum class BlockMlp { kSam, kSam2 };

class TwoWayAttentionBlockImpl : public torch::nn::Module {
 public:
  TwoWayAttentionBlockImpl(int64_t dim, int64_t heads, int64_t mlp_dim, bool skip_first_layer_pe,
                           BlockMlp mlp_kind = BlockMlp::kSam);
  /// Updates queries [B, Nq, E] and keys [B, Nk, E] in place of the Python tuple return.
  void forward(torch::Tensor& queries, torch::Tensor& keys, const torch::Tensor& query_pe,
               const torch::Tensor& key_pe);

  TokenAttention self_attn{nullptr}, cross_attn_token_to_image{nullptr},
      cross_attn_image_to_token{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr}, norm4{nullptr};
  torch::nn::AnyModule mlp;  ///< MLPBlock or MLP (BlockMlp), registered as "mlp"
  bool skip_first_layer_pe;
};
TORCH_MODULE(TwoWayAttentionBlock);

class TwoWayTransformerImpl : public torch::nn::Module {
 public:
  TwoWayTransformerImpl(int64_t depth, int64_t dim, int64_t heads, int64_t mlp_dim,
                        BlockMlp mlp_kind = BlockMlp::kSam);
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
