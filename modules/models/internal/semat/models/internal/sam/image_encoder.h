// SAM's ViT image encoder (segment_anything/modeling/image_encoder.py).
#pragma once

#include <utility>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "semat/models/internal/sam/common.h"
#include "semat/models/sam_config.h"

namespace semat::models::sam {

using models::ImageEncoderConfig;

/// Global attention is computed in blocks of queries whose score maps hold at most this many
/// floats (default 8M = 32 MB). Exposed so tests can force the blocked path on small inputs.
void set_attention_score_budget(int64_t floats);
int64_t attention_score_budget();

/// Relative position embeddings for every (query, key) pair along one axis, the table linearly
/// resized (align_corners=False) to 2 * max(q_size, k_size) - 1 rows when it has another length:
/// [q_size, k_size, head_dim].
torch::Tensor get_rel_pos(int64_t q_size, int64_t k_size, const torch::Tensor& rel_pos);
/// Splits [B, H, W, C] into [B * nW, ws, ws, C] windows after zero-padding H and W at the
/// bottom/right to multiples of `ws`; returns the windows and the padded (Hp, Wp).
std::pair<torch::Tensor, std::pair<int64_t, int64_t>> window_partition(const torch::Tensor& x, int64_t ws);
/// Inverse of window_partition, cropping the padding: [B, H, W, C].
torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t ws,
                                 std::pair<int64_t, int64_t> pad_hw, int64_t H, int64_t W);

class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t patch, int64_t in_chans, int64_t embed_dim);
  /// [B, C, H, W] -> [B, H/p, W/p, D] (channel-last, as the ViT blocks use).
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d proj{nullptr};
  LayerHook proj_hook;  ///< when set, called instead of proj (LoRA)
};
TORCH_MODULE(PatchEmbed);

/// Multi-head attention with decomposed relative position terms over a [B, H, W, D] grid.
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t num_heads, int64_t input_size);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  LayerHook qkv_hook, proj_hook;  ///< when set, called instead of qkv / proj (LoRA)
  torch::Tensor rel_pos_h, rel_pos_w;  ///< [2 * input_size - 1, head_dim]
  int64_t num_heads;
};
TORCH_MODULE(Attention);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ImageEncoderConfig& cfg, int64_t window_size);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  MLPBlock mlp{nullptr};
  int64_t window_size;  ///< 0 for global attention
};
TORCH_MODULE(Block);

struct EncoderOutput {
  torch::Tensor embedding;                   ///< [B, out_chans, grid, grid]
  std::vector<torch::Tensor> global_blocks;  ///< [B, grid, grid, D] after each global block
};

class ImageEncoderViTImpl : public torch::nn::Module {
 public:
  explicit ImageEncoderViTImpl(const ImageEncoderConfig& cfg);
  /// `x`: normalised, padded [B, 3, img, img]: forward_tokens(patch_embed(x)).
  EncoderOutput forward_features(const torch::Tensor& x);
  /// Everything after the patch embedding: adds pos_embed to `tokens` [B, grid, grid, D] (the
  /// patch embedding plus whatever a caller adds to it: SEMat's prompt enhancement), runs the
  /// blocks, keeping each global block's output, and the neck. The one block loop of SAM and
  /// SEMat. With `checkpoint_blocks`, while gradients are recorded and `tokens` requires them,
  /// each block keeps only its input and runs again in backward (activation checkpointing:
  /// the same gradients for a second forward of the blocks, at a fraction of the memory).
  EncoderOutput forward_tokens(const torch::Tensor& tokens, bool checkpoint_blocks = false);
  torch::Tensor forward(const torch::Tensor& x) { return forward_features(x).embedding; }

  /// Inference in reduced precision (torch::kBFloat16 for --precision bf16): converts the patch
  /// embedding, pos_embed and the blocks' weights to `dtype` once, now (LoRA should be merged
  /// first, or its adapters run in `dtype` too); from then on the patch embedding takes float32
  /// images, the blocks run in `dtype`, and the neck and every output stay float32 (the
  /// LayerNorm2d statistics, and the decoders downstream). Not for training.
  /// `convert` false: the same parameters get fresh storage of `dtype` and their values are
  /// left undefined, for a loader that overwrites every one of them next (sam::build_sam): the
  /// checkpoint's float32 weights are then converted once, as they are copied in, instead of
  /// being copied in float32 and converted again.
  void set_compute_dtype(torch::ScalarType dtype, bool convert = true);
  torch::ScalarType compute_dtype = torch::kFloat;  ///< what the blocks run in

  ImageEncoderConfig cfg;
  PatchEmbed patch_embed{nullptr};
  torch::Tensor pos_embed;  ///< [1, grid, grid, D]
  torch::nn::ModuleList blocks;
  torch::nn::Sequential neck{nullptr};
};
TORCH_MODULE(ImageEncoderViT);

}  // namespace semat::models::sam
