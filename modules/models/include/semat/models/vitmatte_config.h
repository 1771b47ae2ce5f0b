// Hyper-parameters of ViTMatte (hustvl/ViTMatte: a plain ViT with window attention and residual
// conv blocks, and the "detail capture" decoder), torch-free, with presets for the official
// ViTMatte-S / ViTMatte-B (ViTMatte_{S,B}_{Com,DIS}.pth) and the tiny test fixture.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace semat::models {

struct VitMatteConfig {
  std::string name = "vitmatte-s";
  // ViT backbone (modeling/backbone/vit.py as configs/common/model.py builds it).
  int64_t in_chans = 4;  ///< normalised RGB + trimap
  int64_t patch_size = 16;
  int64_t embed_dim = 384;
  int64_t depth = 12;
  int64_t num_heads = 6;
  int64_t mlp_dim = 1536;
  int64_t window_size = 14;
  /// Sizes the global blocks' rel-pos tables (2 * img_size / patch - 1 rows); any input size runs.
  int64_t img_size = 512;
  /// pos_embed grid of the 224 pretraining (14 x 14 plus a cls entry): resized to the token grid.
  int64_t pretrain_grid = 14;
  std::vector<int64_t> window_block_indexes = {0, 1, 3, 4, 6, 7, 9, 10};
  std::vector<int64_t> residual_block_indexes = {2, 5, 8, 11};  ///< global attention + ResBottleneck
  // Detail capture decoder (modeling/decoder/detail_capture.py).
  std::vector<int64_t> convstream_out = {48, 96, 192};
  std::vector<int64_t> fusion_out = {256, 128, 64, 32};
  int64_t head_mid = 16;

  bool operator==(const VitMatteConfig& o) const;
};

/// "vitmatte-s", "vitmatte-b" (official) or "vitmatte-tiny" (the test fixture's shapes). Throws
/// ConfigError listing the names for anything else.
VitMatteConfig vitmatte_preset(const std::string& name);
std::vector<std::string> vitmatte_preset_names();

/// Parameters of the built modules (random weights; BatchNorm running statistics are buffers and
/// not counted), as `sum(p.numel() for p in model.parameters())`. Needs LibTorch (semat_models).
struct VitMatteParameterCounts {
  int64_t backbone = 0;  ///< ViT incl. pos_embed and residual blocks
  int64_t residual = 0;  ///< the ResBottleneck blocks (part of backbone)
  int64_t decoder = 0;   ///< detail capture
  int64_t total = 0;
};
VitMatteParameterCounts vitmatte_parameter_counts(const VitMatteConfig& config);

/// DiffMatte (YihanHu-2022/DiffMatte): ViTMatte's ViT (decoder fields of `vit` unused) and a
/// time-conditioned U-Net decoder (DUNet) run by a DDIM sampler.
struct DiffMatteConfig {
  std::string name = "diffmatte-vits";
  VitMatteConfig vit;
  int64_t model_channels = 32;  ///< sinusoidal time-embedding width
  int64_t emb_channels = 32;    ///< time_embed MLP width
  std::vector<int64_t> downsample_in = {7, 32, 64, 128};        ///< 6 cond channels + x_t, then widths
  std::vector<int64_t> upsample_in = {384, 256, 128, 64, 32};  ///< ViT width first
  int64_t head_mid = 16;
  double scale = 0.2;  ///< signal scale of the UniformGauss diffusion (configs/ViTS.py)

  bool operator==(const DiffMatteConfig& o) const;
};

/// "diffmatte-vits", "diffmatte-vitb", "diffmatte-vits-1024" (official) or "diffmatte-tiny" (the
/// test fixture's shapes). Throws ConfigError listing the names for anything else.
DiffMatteConfig diffmatte_preset(const std::string& name);
std::vector<std::string> diffmatte_preset_names();

/// Parameters of the built modules (BatchNorm statistics not counted). Needs LibTorch.
struct DiffMatteParameterCounts {
  int64_t backbone = 0, decoder = 0, total = 0;
};
DiffMatteParameterCounts diffmatte_parameter_counts(const DiffMatteConfig& config);

}  // namespace semat::models
