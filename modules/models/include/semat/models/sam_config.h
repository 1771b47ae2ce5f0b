// Hyper-parameters of SAM, torch-free, with the official presets (segment_anything/build_sam.py)
// and a tiny one for tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace semat::models {

struct ImageEncoderConfig {
  int64_t img_size = 1024;
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t embed_dim = 768;
  int64_t depth = 12;
  int64_t num_heads = 12;
  double mlp_ratio = 4.0;
  int64_t out_chans = 256;
  int64_t window_size = 14;
  std::vector<int64_t> global_attn_indexes = {2, 5, 8, 11};

  int64_t grid() const { return img_size / patch_size; }  ///< tokens per side
  int64_t head_dim() const { return embed_dim / num_heads; }
};

struct PromptEncoderConfig {
  int64_t embed_dim = 256;      ///< equals the encoder's out_chans
  int64_t mask_in_chans = 16;
};

struct MaskDecoderConfig {
  int64_t transformer_dim = 256;
  int64_t depth = 2;  ///< two-way transformer layers
  int64_t num_heads = 8;
  int64_t mlp_dim = 2048;
  int64_t num_multimask_outputs = 3;
  int64_t iou_head_depth = 3;
  int64_t iou_head_hidden_dim = 256;
};

struct SamConfig {
  std::string name = "vit_b";
  /// HQ-SAM (SysCV/sam-hq): the mask decoder adds the HQ output token (hf_token, hf_mlp) and the
  /// global-local fusion layers (compress_vit_feat on the first global block's output,
  /// embedding_encoder, embedding_maskfeature). Everything else is SAM's.
  bool hq = false;
  ImageEncoderConfig encoder;
  PromptEncoderConfig prompt;
  MaskDecoderConfig decoder;
  /// Pixel statistics in 0..255 RGB (not part of checkpoints).
  double pixel_mean[3] = {123.675, 116.28, 103.53};
  double pixel_std[3] = {58.395, 57.12, 57.375};

  bool operator==(const SamConfig& o) const;
};

/// "vit_b", "vit_l", "vit_h" (official SAM), "hq_vit_b", "hq_vit_l", "hq_vit_h" (official HQ-SAM),
/// "tiny" or "hq_tiny" (the test fixtures' shapes).
/// Throws ConfigError listing the names for anything else.
SamConfig sam_preset(const std::string& name);
std::vector<std::string> sam_preset_names();

}  // namespace semat::models
