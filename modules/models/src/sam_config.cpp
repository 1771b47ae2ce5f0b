#include "semat/models/sam_config.h"

#include "semat/core/error.h"

namespace semat::models {

bool SamConfig::operator==(const SamConfig& o) const {
  const auto& a = encoder;
  const auto& b = o.encoder;
  return hq == o.hq && a.img_size == b.img_size && a.patch_size == b.patch_size && a.embed_dim == b.embed_dim &&
         a.depth == b.depth && a.num_heads == b.num_heads && a.mlp_ratio == b.mlp_ratio &&
         a.out_chans == b.out_chans && a.window_size == b.window_size &&
         a.global_attn_indexes == b.global_attn_indexes && prompt.embed_dim == o.prompt.embed_dim &&
         prompt.mask_in_chans == o.prompt.mask_in_chans &&
         decoder.transformer_dim == o.decoder.transformer_dim && decoder.depth == o.decoder.depth &&
         decoder.num_heads == o.decoder.num_heads && decoder.mlp_dim == o.decoder.mlp_dim &&
         decoder.num_multimask_outputs == o.decoder.num_multimask_outputs &&
         decoder.iou_head_depth == o.decoder.iou_head_depth &&
         decoder.iou_head_hidden_dim == o.decoder.iou_head_hidden_dim;
}

std::vector<std::string> sam_preset_names() {
  return {"vit_b", "vit_l", "vit_h", "tiny", "hq_vit_b", "hq_vit_l", "hq_vit_h", "hq_tiny"};
}

SamConfig sam_preset(const std::string& name) {
  const std::string base = name.rfind("hq_", 0) == 0 ? name.substr(3) : "";
  if (base == "vit_b" || base == "vit_l" || base == "vit_h" || base == "tiny") {
    // HQ-SAM = the same SAM sizes plus the HQ parts (sam-hq build_sam.py).
    SamConfig c = sam_preset(base);
    c.name = name;
    c.hq = true;
    return c;
  }
  SamConfig c;
  c.name = name;
  auto& e = c.encoder;
  if (name == "vit_b") {
    e.embed_dim = 768, e.depth = 12, e.num_heads = 12, e.global_attn_indexes = {2, 5, 8, 11};
  } else if (name == "vit_l") {
    e.embed_dim = 1024, e.depth = 24, e.num_heads = 16, e.global_attn_indexes = {5, 11, 17, 23};
  } else if (name == "vit_h") {
    e.embed_dim = 1280, e.depth = 32, e.num_heads = 16, e.global_attn_indexes = {7, 15, 23, 31};
  } else if (name == "tiny") {
    e.img_size = 128, e.patch_size = 16, e.embed_dim = 64, e.depth = 3, e.num_heads = 2;
    e.window_size = 4, e.global_attn_indexes = {1}, e.out_chans = 32;
    c.prompt.embed_dim = 32, c.prompt.mask_in_chans = 8;
    c.decoder.transformer_dim = 32, c.decoder.depth = 2, c.decoder.num_heads = 2;
    c.decoder.mlp_dim = 64, c.decoder.iou_head_hidden_dim = 32;
  } else {
    throw ConfigError("unknown SAM model type '" + name + "': use auto, vit_b, vit_l, vit_h, tiny, hq_vit_b, hq_vit_l, hq_vit_h or hq_tiny");
  }
  return c;
}

}  // namespace semat::models
