// ViTMatte's backbone (modeling/backbone/vit.py, ViTDet style): a plain ViT over 4 input channels
// with window attention in most blocks, global attention followed by a residual bottleneck conv
// block in the others, no neck. Attention (qkv, decomposed rel-pos, blocked global attention)
// and window partitioning are SAM's (semat::models::sam); the MLP keys are timm's (fc1/fc2).
#pragma once

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "semat/models/internal/sam/common.h"
#include "semat/models/internal/sam/image_encoder.h"
#include "semat/models/vitmatte_config.h"

namespace semat::models::vitmatte {

/// timm's Mlp: fc1, exact GELU, fc2.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

/// detectron2's ResBottleneckBlock with norm "LN" (channel LayerNorm per pixel, eps 1e-6) and GELU:
/// x + norm3(conv3(gelu(norm2(conv2(gelu(norm1(conv1(x)))))))), convs without bias. [B, C, H, W].
class ResBottleneckBlockImpl : public torch::nn::Module {
 public:
  ResBottleneckBlockImpl(int64_t channels, int64_t bottleneck);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  sam::LayerNorm2d norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
};
TORCH_MODULE(ResBottleneckBlock);

class BlockImpl : public torch::nn::Module {
 public:
  /// `window_size` 0: global attention with rel-pos tables for `input_size` tokens per side.
  BlockImpl(const VitMatteConfig& cfg, int64_t window_size, bool use_residual);
  /// [B, h, w, C] -> same. `attn_mlp_out` (optional) receives the residual block's input.
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* attn_mlp_out = nullptr);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  sam::Attention attn{nullptr};
  Mlp mlp{nullptr};
  ResBottleneckBlock residual{nullptr};  ///< null unless use_residual
  int64_t window_size;
};
TORCH_MODULE(Block);

/// What the parity tests compare (channel-last [B, h, w, C] unless noted).
struct VitTrace {
  torch::Tensor patch_embed, abs_pos;
  std::vector<torch::Tensor> blocks;
  std::vector<torch::Tensor> attn_mlp_out;  ///< per block; undefined for blocks without residual
};

class ViTImpl : public torch::nn::Module {
 public:
  explicit ViTImpl(const VitMatteConfig& cfg);
  /// [B, 4, Hp, Wp] (Hp, Wp multiples of the patch) -> features [B, C, Hp/16, Wp/16].
  torch::Tensor forward(const torch::Tensor& x, VitTrace* trace = nullptr);
  /// get_abs_pos: pos_embed without its cls entry, bicubically resized (align_corners=False)
  /// from the pretraining grid to h x w: [1, h, w, C].
  torch::Tensor abs_pos(int64_t h, int64_t w) const;

  VitMatteConfig cfg;
  sam::PatchEmbed patch_embed{nullptr};
  torch::Tensor pos_embed;  ///< [1, pretrain_grid^2 + 1, C] (cls entry first)
  torch::nn::ModuleList blocks;
};
TORCH_MODULE(ViT);

}  // namespace semat::models::vitmatte
