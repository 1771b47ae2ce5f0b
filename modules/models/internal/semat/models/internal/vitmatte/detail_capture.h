// ViTMatte's decoder (modeling/decoder/detail_capture.py Detail_Capture): a conv stream over the
// 4-channel input gives detail features at strides 2, 4, 8; four fusion blocks upsample the ViT
// features x2 and fuse them with those details (and finally the input itself); a small head
// gives the alpha logits. BatchNorm in eval mode (running statistics).
#pragma once

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include "semat/models/vitmatte_config.h"

namespace semat::models::vitmatte {

/// Basic_Conv3x3: conv (3x3, pad 1, no bias), bn, ReLU.
class BasicConv3x3Impl : public torch::nn::Module {
 public:
  BasicConv3x3Impl(int64_t in, int64_t out, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv3x3);

/// ConvStream: `convs` of stride-2 BasicConv3x3.
class ConvStreamImpl : public torch::nn::Module {
 public:
  ConvStreamImpl(int64_t in_chans, const std::vector<int64_t>& out);
  /// D0 (the input), D1, D2, D3.
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  torch::nn::ModuleList convs;
};
TORCH_MODULE(ConvStream);

/// Fusion_Block: bilinear x2 of x (align_corners=False), cat([detail, up]), BasicConv3x3.
class FusionBlockImpl : public torch::nn::Module {
 public:
  FusionBlockImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& detail);
  BasicConv3x3 conv{nullptr};
};
TORCH_MODULE(FusionBlock);

/// Matting_Head: matting_convs = Conv3x3 (bias), BN, ReLU, Conv1x1 (bias) -> 1 channel (logits).
class MattingHeadImpl : public torch::nn::Module {
 public:
  MattingHeadImpl(int64_t in, int64_t mid);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Sequential matting_convs{nullptr};
};
TORCH_MODULE(MattingHead);

struct DecoderTrace {
  std::vector<torch::Tensor> details;  ///< D0..D3
  std::vector<torch::Tensor> fusion;   ///< fusion block outputs
  torch::Tensor logits;                ///< [B, 1, Hp, Wp] before the sigmoid
};

class DetailCaptureImpl : public torch::nn::Module {
 public:
  explicit DetailCaptureImpl(const VitMatteConfig& cfg);
  /// features [B, C, Hp/16, Wp/16], images [B, 4, Hp, Wp] -> alpha logits [B, 1, Hp, Wp].
  torch::Tensor forward(const torch::Tensor& features, const torch::Tensor& images,
                        DecoderTrace* trace = nullptr);

  ConvStream convstream{nullptr};
  torch::nn::ModuleList fusion_blks;
  MattingHead matting_head{nullptr};
};
TORCH_MODULE(DetailCapture);

}  // namespace semat::models::vitmatte
