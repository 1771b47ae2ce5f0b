// LoRA on the image encoder's qkv / proj Linears and its patch-embedding Conv2d, laid out as
// HuggingFace peft saves them (base_layer, lora_A.default, lora_B.default) so official SEMat
// checkpoints load by name.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "semat/models/internal/sam/image_encoder.h"
#include "semat/models/internal/sam2/image_encoder.h"

namespace semat::models::semat_net {

/// y = base_layer(x) + scaling * lora_B(lora_A(dropout(x))), dropout only in training.
/// lora_A: in -> rank (no bias), lora_B: rank -> out (no bias).
class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(torch::nn::Linear base, int64_t rank, double alpha, double dropout = 0.1);
  torch::Tensor forward(const torch::Tensor& x);
  /// Folds scaling * B @ A into base_layer.weight; forward then skips the LoRA branch.
  void merge();
  /// Exact inverse of merge() up to float rounding.
  void unmerge();

  torch::nn::Linear base_layer{nullptr}, A{nullptr}, B{nullptr};
  torch::nn::ModuleDict lora_A{nullptr}, lora_B{nullptr}, lora_dropout{nullptr};
  double scaling;
  bool merged = false;
};
TORCH_MODULE(LoraLinear);

/// Conv2d LoRA: lora_A = Conv2d(in -> rank) with the base kernel/stride/padding, lora_B = 1x1
/// Conv2d(rank -> out), both without bias.
class LoraConv2dImpl : public torch::nn::Module {
 public:
  LoraConv2dImpl(torch::nn::Conv2d base, int64_t rank, double alpha, double dropout = 0.1);
  torch::Tensor forward(const torch::Tensor& x);
  void merge();
  void unmerge();

  torch::nn::Conv2d base_layer{nullptr}, A{nullptr}, B{nullptr};
  torch::nn::ModuleDict lora_A{nullptr}, lora_B{nullptr}, lora_dropout{nullptr};
  double scaling;
  bool merged = false;
};
TORCH_MODULE(LoraConv2d);

/// Wraps every module peft's target list {"qkv", "proj"} hits by suffix: patch_embed.proj and
/// blocks.N.attn.qkv / blocks.N.attn.proj. LoRA A ~ N(0, 1/rank), B = 0 ("gaussian" init), so
/// the encoder computes exactly what it did before.
void apply_lora(sam::ImageEncoderViTImpl& encoder, int64_t rank, double alpha);
/// The same peft call on SAM 2's image encoder (SEMat_SAM2.py): trunk.patch_embed.proj and
/// trunk.bbox_mask_patch_embed.proj (conv LoRA), blocks.N.attn.qkv, blocks.N.attn.proj and the
/// stage-change shortcuts blocks.N.proj; the neck's convs do not match the suffixes.
void apply_lora(sam2::ImageEncoderImpl& encoder, int64_t rank, double alpha);
/// merge() / unmerge() on every LoRA layer below `module`.
void merge_lora(torch::nn::Module& module);
void unmerge_lora(torch::nn::Module& module);

}  // namespace semat::models::semat_net
