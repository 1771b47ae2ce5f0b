#include "semat/models/vitmatte_config.h"

#include "semat/core/error.h"

namespace semat::models {

bool VitMatteConfig::operator==(const VitMatteConfig& o) const {
  return in_chans == o.in_chans && patch_size == o.patch_size && embed_dim == o.embed_dim &&
         depth == o.depth && num_heads == o.num_heads && mlp_dim == o.mlp_dim &&
         window_size == o.window_size && img_size == o.img_size && pretrain_grid == o.pretrain_grid &&
         window_block_indexes == o.window_block_indexes &&
         residual_block_indexes == o.residual_block_indexes && convstream_out == o.convstream_out &&
         fusion_out == o.fusion_out && head_mid == o.head_mid;
}

std::vector<std::string> vitmatte_preset_names() { return {"vitmatte-s", "vitmatte-b", "vitmatte-tiny"}; }

VitMatteConfig vitmatte_preset(const std::string& name) {
  VitMatteConfig c;
  if (name == "vitmatte-s") {
  } else if (name == "vitmatte-b") {
    // configs/ViTMatte_B_100ep.py: three assignments on S's config.
    c.embed_dim = 768, c.num_heads = 12, c.mlp_dim = 3072;
  } else if (name == "vitmatte-tiny") {
    // The shapes of the shared vitmatte_tiny fixture (fixture.json "config").
    c.embed_dim = 64, c.num_heads = 2, c.depth = 4, c.mlp_dim = 256, c.window_size = 6;
    c.img_size = 128, c.window_block_indexes = {0, 2}, c.residual_block_indexes = {1, 3};
    c.fusion_out = {32, 24, 16, 16};
  } else {
    throw ConfigError("unknown ViTMatte model type '" + name +
                      "': use auto, vitmatte-s, vitmatte-b or vitmatte-tiny");
  }
  c.name = name;
  return c;
}

bool DiffMatteConfig::operator==(const DiffMatteConfig& o) const {
  // The ViT part only: the decoder fields of `vit` are not DiffMatte's.
  auto backbone = [](VitMatteConfig c) {
    c.name.clear(), c.convstream_out.clear(), c.fusion_out.clear(), c.head_mid = 0;
    return c;
  };
  return backbone(vit) == backbone(o.vit) && model_channels == o.model_channels &&
         emb_channels == o.emb_channels && downsample_in == o.downsample_in && upsample_in == o.upsample_in &&
         head_mid == o.head_mid && scale == o.scale;
}

std::vector<std::string> diffmatte_preset_names() {
  return {"diffmatte-vits", "diffmatte-vitb", "diffmatte-vits-1024", "diffmatte-tiny"};
}

DiffMatteConfig diffmatte_preset(const std::string& name) {
  DiffMatteConfig c;
  if (name == "diffmatte-vits") {
  } else if (name == "diffmatte-vits-1024") {
    c.vit.img_size = 1024;  // configs/ViTS_1024.py: global rel-pos tables of 127 rows
  } else if (name == "diffmatte-vitb") {
    c.vit = vitmatte_preset("vitmatte-b");
    c.upsample_in = {768, 256, 128, 64, 32};
  } else if (name == "diffmatte-tiny") {
    // The shapes of the shared diffmatte_tiny fixture (fixture.json "config").
    c.vit = vitmatte_preset("vitmatte-tiny");
    c.model_channels = 16, c.emb_channels = 16;
    c.downsample_in = {7, 8, 16, 16};
    c.upsample_in = {64, 32, 16, 16, 8};
  } else {
    throw ConfigError("unknown DiffMatte model type '" + name +
                      "': use auto, diffmatte-vits, diffmatte-vitb, diffmatte-vits-1024 or diffmatte-tiny");
  }
  c.name = name;
  c.vit.name = name;
  return c;
}

}  // namespace semat::models
