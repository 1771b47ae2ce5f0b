// SEMat's matting decoder (modeling/decoder/unet_detail_capture.py, MattingDetailDecoder with
// block_num 2, sum skips and BatchNorm): a UNet over the image and the upsampled matting logits,
// fused at the bottleneck with the ViT's global-block features. Attribute names follow Python.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <functional>

#include "semat/models/semat_config.h"

namespace semat::models::semat_net {

/// out = GELU(basic_layer(x) + res_layer(x)); both halve the resolution (stride 2, kernel k).
class BasicDownBlockImpl : public torch::nn::Module {
 public:
  BasicDownBlockImpl(int64_t in, int64_t out, int64_t kernel);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::ModuleList
      basic_layer;  ///< [Conv s2, BN, GELU, Conv, BN], GELU, [Conv, BN, GELU, Conv, BN]
  torch::nn::Conv2d res_layer{nullptr};
};
TORCH_MODULE(BasicDownBlock);

/// x += skip; out = GELU(basic_layer(x) + res_layer(bilinear_x2(x))) at twice the resolution.
class BasicUpBlockImpl : public torch::nn::Module {
 public:
  BasicUpBlockImpl(int64_t in, int64_t out, int64_t kernel);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& skip);

  torch::nn::ModuleList
      basic_layer;  ///< [ConvT 2x2 s2, BN, GELU, Conv, BN], GELU, [Conv, BN, GELU, Conv, BN]
  torch::nn::Conv2d res_layer{nullptr};
};
TORCH_MODULE(BasicUpBlock);

/// Intermediate tensors, filled when a trace is passed to forward (tests, debugging).
struct MattingDecoderTrace {
  torch::Tensor input;    ///< [B, 6, S, S] cat(images, matting_logits / 6.5)
  torch::Tensor vit_agg;  ///< [B, C, g, g] vit_feat_aggregation output (SAM/HQ variants)
  /// SAM2 variant: mid_layer[0..2] outputs ([B, D/8, 4g, 4g], [B, D/4, 2g, 2g], [B, D, g, g]).
  torch::Tensor mid_layer0, mid_layer1, mid_layer2;
  torch::Tensor down3;    ///< [B, C, g, g] last down block
  torch::Tensor mid;      ///< [B, C, g, g] mid_layer output
  torch::Tensor up0;      ///< [B, C', 2g, 2g] first up block
};

class MattingDetailDecoderImpl : public torch::nn::Module {
 public:
  explicit MattingDetailDecoderImpl(const models::MattingDecoderConfig& cfg);
  /// images [B, 3, S, S] normalised; matting_logits [B, 3, S, S] (upsampled, raw); vit_feats:
  /// the global-block outputs, channel-last [B, g, g, D]. Returns alpha logits [B, 1, S, S]
  /// (alpha = sigmoid of them).
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& matting_logits,
                        const std::vector<torch::Tensor>& vit_feats,
                        MattingDecoderTrace* trace = nullptr);
  /// SAM2 variant (cfg.sam2_multi_scale): image_embed [B, D, g, g] (with no_mem_embed) and the
  /// high-res features [B, D/8, 4g, 4g], [B, D/4, 2g, 2g] in place of the ViT features.
  torch::Tensor forward_sam2(const torch::Tensor& images, const torch::Tensor& matting_logits,
                             const torch::Tensor& image_embed, const torch::Tensor& high_res0,
                             const torch::Tensor& high_res1, MattingDecoderTrace* trace = nullptr);

  models::MattingDecoderConfig cfg;
  torch::nn::Sequential big_kernel_process{nullptr};
  torch::nn::ModuleDict vit_feat_proj{nullptr};
  torch::nn::Sequential vit_feat_aggregation{nullptr};
  torch::nn::ModuleList down_blks, up_blks;
  torch::nn::Sequential mid_layer{nullptr};  ///< SAM/HQ variants
  torch::nn::ModuleList mid_layers{nullptr};  ///< SAM2 variant, also registered as "mid_layer"
  torch::nn::Conv2d matting_head{nullptr};

 private:
  /// The U-Net shared by both variants: the stem and down blocks on cat(images, logits / 6.5)
  /// (`down_extra[i]`, when defined, concatenated to the input of down_blks[i]), `bottleneck`
  /// on the last down block's output, the up blocks with the down blocks' skips, the head.
  torch::Tensor unet(const torch::Tensor& images, const torch::Tensor& matting_logits,
                     const std::vector<torch::Tensor>& down_extra,
                     const std::function<torch::Tensor(const torch::Tensor&)>& bottleneck,
                     MattingDecoderTrace* trace);
};
TORCH_MODULE(MattingDetailDecoder);

}  // namespace semat::models::semat_net
