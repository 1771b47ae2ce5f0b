// Hyper-parameters of SEMat (SAM + prompt enhancement + LoRA + matting tokens + matting decoder),
// torch-free, with presets for the SAM ViT-B/L/H backbones and the tiny test fixture.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "semat/models/sam2_config.h"
#include "semat/models/sam_config.h"

namespace semat::models {

/// MattingDetailDecoder (modeling/decoder/unet_detail_capture.py) as SEMat_SAM builds it:
/// a 13x13 "big kernel" stem, 4 down blocks (k5), ViT-feature fusion, 4 up blocks (k3).
struct MattingDecoderConfig {
  int64_t img_feat_in = 6;     ///< normalised RGB + 3 matting-logit channels
  int64_t vit_feat_in = 1024;  ///< ViT embed dim of the global-block features
  std::vector<int64_t> vit_feat_index = {0, 1, 2, 3};  ///< which global-block outputs to fuse
  /// (in, out) channels per down block. The first block's input is 32: the big-kernel stem's
  /// output (its 16/32 widths are fixed in the official code).
  std::vector<std::pair<int64_t, int64_t>> down = {{32, 32}, {32, 64}, {64, 128}, {128, 256}};
  std::vector<std::pair<int64_t, int64_t>> up = {{256, 128}, {128, 64}, {64, 32}, {32, 16}};
  int64_t head_in = 16;
  /// Matting logits are divided by this before entering the decoder.
  double norm_mask_logits = 6.5;
  /// SEMat (SAM2) (sam2_multi_scale_feates=True): no vit_feat_proj; mid_layer is four
  /// conv+BN+GELU blocks: 1x1 on the high-res features (D/8 and D/4 channels, concatenated to
  /// the inputs of down_blks[2] and [3]), 1x1 on the image embedding (D), and a 3x3 fusing the
  /// last down block with it. vit_feat_aggregation is built (it is in the checkpoint) but not
  /// run. The official code hard-codes the widths for D = 256; here they follow `down` and
  /// sam2_dim (the full-size presets give exactly the official literals).
  bool sam2_multi_scale = false;
  int64_t sam2_dim = 256;  ///< D: the SAM 2 decoder / FPN width

  bool operator==(const MattingDecoderConfig& o) const;
};

/// The SAM 2 variant (SEMat_SAM2.py) is sam2 = true: `sam` then only carries the input size
/// (encoder.img_size, patch_size = the backbone stride 16), the prompt encoder and the SAM 2 mask
/// decoder's widths, `hiera` the image encoder.
/// The HQ-SAM variant (SEMat_HQ-SAM.py) is sam.hq = true: the decoder also has HQ-SAM's frozen
/// HQ token and fusion layers, 11 decoder tokens (iou, 4 mask, HQ, 3 matting, then the 2 box
/// tokens), and the matting logits are the matting tokens' plus the HQ token's.
struct SematConfig {
  std::string name = "semat-vit-l";
  SamConfig sam = sam_preset("vit_l");
  int64_t matting_tokens = 3;
  int64_t lora_rank = 16;
  double lora_alpha = 16.0;  ///< LoRA output scale is lora_alpha / lora_rank
  MattingDecoderConfig matting_decoder;
  bool sam2 = false;
  /// SAM2 variant: the SAM 2 image model it builds on (trunk with bbox_mask_in_chans = 4, neck;
  /// image_size = sam.encoder.img_size).
  Sam2Config sam2_base;

  double lora_scaling() const { return lora_alpha / static_cast<double>(lora_rank); }
  bool operator==(const SematConfig& o) const;
};

/// "semat-vit-b", "semat-vit-l" (the official SEMat_SAM), "semat-vit-h", "semat-tiny" (the
/// test fixture's shapes), and the HQ-SAM variants "semat-hq-vit-b", "semat-hq-vit-l" (the
/// official SEMat_HQ-SAM), "semat-hq-vit-h", "semat-hq-tiny". Throws ConfigError listing the
/// names for anything else.
SematConfig semat_preset(const std::string& name);
std::vector<std::string> semat_preset_names();

/// The SEMat configuration built on a SAM configuration the way SEMat_SAM.py builds it on ViT-L
/// (matting decoder fed with the ViT's embed dim).
SematConfig semat_config_for(const SamConfig& sam);

/// Trainable parameters of SEMat by component (everything SEMat adds to the frozen SAM).
struct SematParameterCounts {
  int64_t prompt_enhancement = 0;      ///< condition_layer.patch_embed (4-channel patch embed)
  int64_t lora = 0;                    ///< every lora_A / lora_B of the image encoder
  int64_t matting_tokens_adapter = 0;  ///< mask_decoder.matting_* (tokens, shared MLP, adapter)
  int64_t matting_decoder = 0;         ///< MattingDetailDecoder (parameters, no BN statistics)
  int64_t total = 0;                   ///< sum of the above = requires_grad parameters
  int64_t frozen_sam = 0;              ///< SAM's encoder, prompt encoder and mask decoder
  /// HQ-SAM variant: the frozen HQ-SAM parts (hf_token, hf_mlp, compress_vit_feat,
  /// embedding_encoder, embedding_maskfeature); 0 for the SAM variant.
  int64_t frozen_hq = 0;
};

/// Counts taken from the modules of a model built with `config` (random weights; building ViT-H
/// takes a few seconds and about 2.6 GB). Needs LibTorch (semat_models).
SematParameterCounts semat_parameter_counts(const SematConfig& config);

}  // namespace semat::models
