#include "semat/models/semat_config.h"

#include "semat/core/error.h"

namespace semat::models {

bool MattingDecoderConfig::operator==(const MattingDecoderConfig& o) const {
  return img_feat_in == o.img_feat_in && vit_feat_in == o.vit_feat_in &&
         vit_feat_index == o.vit_feat_index && down == o.down && up == o.up &&
         head_in == o.head_in && norm_mask_logits == o.norm_mask_logits &&
         sam2_multi_scale == o.sam2_multi_scale && sam2_dim == o.sam2_dim;
}

bool SematConfig::operator==(const SematConfig& o) const {
  return sam == o.sam && matting_tokens == o.matting_tokens && lora_rank == o.lora_rank &&
         lora_alpha == o.lora_alpha && matting_decoder == o.matting_decoder && sam2 == o.sam2 &&
         (!sam2 || sam2_base == o.sam2_base);
}

std::vector<std::string> semat_preset_names() {
  return {"semat-vit-b",        "semat-vit-l",        "semat-vit-h",        "semat-tiny",
          "semat-hq-vit-b",     "semat-hq-vit-l",     "semat-hq-vit-h",     "semat-hq-tiny",
          "semat-sam2-hiera-t", "semat-sam2-hiera-s", "semat-sam2-hiera-b+", "semat-sam2-hiera-l",
          "semat-sam2-tiny"};
}

SematConfig semat_config_for(const SamConfig& sam) {
  SematConfig c;
  c.name = "custom";
  c.sam = sam;
  c.matting_decoder.vit_feat_in = sam.encoder.embed_dim;
  c.matting_decoder.vit_feat_index.clear();
  for (size_t i = 0; i < sam.encoder.global_attn_indexes.size(); ++i)
    c.matting_decoder.vit_feat_index.push_back(static_cast<int64_t>(i));
  return c;
}

namespace {

// SEMat_SAM2.py on a SAM 2 image size S and decoder width D: the SAM 2 prompt encoder and mask
// decoder (iou head hidden 256, two-way transformer depth 2, 8 heads, mlp 2048: hard-coded in
// SAM2Base), the matting decoder on SAM 2 features.
SematConfig sam2_variant(Sam2Config base) {
  const int64_t S = base.image_size, D = base.neck.d_model;
  SematConfig c;
  c.sam2 = true;
  base.trunk.bbox_mask_in_chans = 4;  // HieraBBoxMask: cat(image, box mask)
  c.sam2_base = base;
  SamConfig& s = c.sam;
  s.name = "custom";
  s.encoder.img_size = S;
  s.encoder.patch_size = 16;  // the backbone stride: the image embedding is S/16 per side
  s.encoder.out_chans = D;
  s.prompt.embed_dim = D;
  s.prompt.mask_in_chans = 16;
  s.decoder = MaskDecoderConfig{};
  s.decoder.transformer_dim = D;
  auto& m = c.matting_decoder;
  m.sam2_multi_scale = true;
  m.sam2_dim = D;
  // vit_feat_aggregation only (never run): Conv3x3(1024 -> 256) in the official build.
  m.vit_feat_in = 1024;
  m.vit_feat_index = {0, 1, 2, 3};
  // The official literals for D = 256: [(32, 32), (32, 64), (64 + 32, 128), (128 + 64, 256)].
  m.down = {{32, 32}, {32, 64}, {64 + D / 8, 128}, {128 + D / 4, 256}};
  return c;
}

}  // namespace

SematConfig semat_preset(const std::string& name) {
  SematConfig c;
  if (name == "semat-sam2-hiera-t" || name == "semat-sam2-hiera-s" ||
      name == "semat-sam2-hiera-b+" || name == "semat-sam2-hiera-l") {
    c = sam2_variant(sam2_preset("sam2_hiera_" + name.substr(17)));
  } else if (name == "semat-sam2-tiny") {
    // The shapes of the shared semat_sam2_tiny fixture (fixture.json "config"): D = 16 and the
    // matting decoder widths of its source patch (the official code hard-codes them for D = 256).
    c = sam2_variant(sam2_preset("sam2_tiny"));  // the same SAM 2 shapes as the sam2_tiny fixture
    auto& m = c.matting_decoder;
    m.vit_feat_in = 16;
    m.down = {{32, 8}, {8, 8}, {8 + 2, 16}, {16 + 4, 16}};
    m.up = {{16, 16}, {16, 8}, {8, 8}, {8, 8}};
    m.head_in = 8;
  } else if (name == "semat-hq-vit-b" || name == "semat-hq-vit-l" || name == "semat-hq-vit-h") {
    c = semat_config_for(sam_preset("hq_vit_" + name.substr(name.size() - 1)));
  } else if (name == "semat-hq-tiny") {
    // The shapes of the shared semat_hq_tiny fixture (fixture.json "config").
    SamConfig s;
    s.name = "custom";
    s.hq = true;
    auto& e = s.encoder;
    e.img_size = 128, e.patch_size = 16, e.embed_dim = 32, e.depth = 4, e.num_heads = 2;
    e.window_size = 3, e.global_attn_indexes = {1, 3}, e.out_chans = 32;
    s.prompt.embed_dim = 32, s.prompt.mask_in_chans = 16;
    s.decoder.transformer_dim = 32, s.decoder.depth = 2, s.decoder.num_heads = 2;
    s.decoder.mlp_dim = 64, s.decoder.iou_head_hidden_dim = 32;
    c = semat_config_for(s);
    c.matting_decoder.down = {{32, 8}, {8, 12}, {12, 16}, {16, 24}};
    c.matting_decoder.up = {{24, 16}, {16, 12}, {12, 8}, {8, 8}};
    c.matting_decoder.head_in = 8;
  } else if (name == "semat-vit-b" || name == "semat-vit-l" || name == "semat-vit-h") {
    c = semat_config_for(sam_preset("vit_" + name.substr(name.size() - 1)));
  } else if (name == "semat-tiny") {
    // The shapes of the shared semat_tiny fixture (fixture.json "config").
    SamConfig s;
    s.name = "custom";
    auto& e = s.encoder;
    e.img_size = 256, e.patch_size = 16, e.embed_dim = 64, e.depth = 4, e.num_heads = 2;
    e.window_size = 5, e.global_attn_indexes = {1, 3}, e.out_chans = 32;
    s.prompt.embed_dim = 32, s.prompt.mask_in_chans = 16;
    s.decoder.transformer_dim = 32, s.decoder.depth = 2, s.decoder.num_heads = 2;
    s.decoder.mlp_dim = 64, s.decoder.iou_head_hidden_dim = 32;
    c = semat_config_for(s);
    c.matting_decoder.down = {{32, 8}, {8, 16}, {16, 24}, {24, 32}};
    c.matting_decoder.up = {{32, 24}, {24, 16}, {16, 8}, {8, 8}};
    c.matting_decoder.head_in = 8;
  } else {
    throw ConfigError("unknown SEMat model type '" + name +
                      "': use auto, semat-vit-b, semat-vit-l, semat-vit-h, semat-tiny, "
                      "semat-hq-vit-b, semat-hq-vit-l, semat-hq-vit-h, semat-hq-tiny, "
                      "semat-sam2-hiera-t, semat-sam2-hiera-s, semat-sam2-hiera-b+, "
                      "semat-sam2-hiera-l or semat-sam2-tiny");
  }
  c.name = name;
  return c;
}

}  // namespace semat::models
