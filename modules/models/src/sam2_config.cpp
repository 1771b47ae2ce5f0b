#include "semat/models/sam2_config.h"

#include <algorithm>
#include <numeric>

#include "semat/core/error.h"

namespace semat::models {

int64_t HieraConfig::depth() const { return std::accumulate(stages.begin(), stages.end(), int64_t{0}); }

// ref: hieradet.py Hiera.__init__ (stage_ends, q_pool_blocks)
std::vector<int64_t> HieraConfig::stage_ends() const {
  std::vector<int64_t> ends;
  int64_t sum = 0;
  for (int64_t s : stages) ends.push_back((sum += s) - 1);
  return ends;
}

std::vector<int64_t> HieraConfig::q_pool_blocks() const {
  std::vector<int64_t> out;
  const auto ends = stage_ends();
  for (size_t i = 0; i + 1 < ends.size() && static_cast<int64_t>(out.size()) < q_pool; ++i) out.push_back(ends[i] + 1);
  return out;
}

std::vector<int64_t> HieraConfig::channel_list() const {
  const auto blocks = hiera_blocks(*this);
  std::vector<int64_t> out;
  const auto ends = stage_ends();
  for (auto it = ends.rbegin(); it != ends.rend(); ++it) out.push_back(blocks.at(static_cast<size_t>(*it)).dim_out);
  return out;
}

std::vector<HieraBlockSpec> hiera_blocks(const HieraConfig& c) {
  const auto ends = c.stage_ends();
  const auto pools = c.q_pool_blocks();
  auto has = [](const std::vector<int64_t>& v, int64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  std::vector<HieraBlockSpec> out;
  int64_t dim = c.embed_dim, heads = c.num_heads;
  size_t stage = 1;
  for (int64_t i = 0; i < c.depth(); ++i) {
    int64_t dim_out = dim;
    // The window is read before the stage counter moves: the lag of one block.
    int64_t window = stage - 1 < c.window_spec.size() ? c.window_spec[stage - 1] : 0;
    if (has(c.global_att_blocks, i)) window = 0;
    if (has(ends, i - 1)) {
      dim_out = static_cast<int64_t>(static_cast<double>(dim) * c.dim_mul);
      heads = static_cast<int64_t>(static_cast<double>(heads) * c.head_mul);
      ++stage;
    }
    out.push_back({dim, dim_out, heads, window, has(pools, i)});
    dim = dim_out;
  }
  return out;
}

bool Sam2Config::operator==(const Sam2Config& o) const {
  const auto& a = trunk;
  const auto& b = o.trunk;
  const auto& d = decoder;
  const auto& e = o.decoder;
  return image_size == o.image_size && backbone_stride == o.backbone_stride && a.embed_dim == b.embed_dim &&
         a.num_heads == b.num_heads && a.stages == b.stages && a.global_att_blocks == b.global_att_blocks &&
         a.window_spec == b.window_spec &&
         a.window_pos_embed_bkg_spatial_size == b.window_pos_embed_bkg_spatial_size && a.q_pool == b.q_pool &&
         a.q_stride == b.q_stride && a.dim_mul == b.dim_mul && a.head_mul == b.head_mul &&
         a.mlp_ratio == b.mlp_ratio && a.in_chans == b.in_chans && neck.d_model == o.neck.d_model &&
         neck.backbone_channel_list == o.neck.backbone_channel_list &&
         neck.fpn_top_down_levels == o.neck.fpn_top_down_levels && neck.scalp == o.neck.scalp &&
         mask_in_chans == o.mask_in_chans && d.transformer_dim == e.transformer_dim && d.depth == e.depth &&
         d.num_heads == e.num_heads && d.mlp_dim == e.mlp_dim && d.num_multimask_outputs == e.num_multimask_outputs &&
         d.iou_head_depth == e.iou_head_depth && d.iou_head_hidden_dim == e.iou_head_hidden_dim &&
         d.pred_obj_scores == e.pred_obj_scores && d.use_high_res_features == e.use_high_res_features;
}

std::vector<std::string> sam2_preset_names() {
  return {"sam2_hiera_t", "sam2_hiera_s", "sam2_hiera_b+", "sam2_hiera_l", "sam2_tiny"};
}

// ref: sam2/configs/sam2/sam2_hiera_{t,s,b+,l}.yaml (Hiera defaults: stages (2,3,16,3), global
// (12,16,20), window_spec (8,4,14,7), bkg (14,14)).
Sam2Config sam2_preset(const std::string& name) {
  Sam2Config c;
  c.name = name;
  auto& t = c.trunk;
  if (name == "sam2_hiera_t") {
    t.embed_dim = 96, t.num_heads = 1, t.stages = {1, 2, 7, 2}, t.global_att_blocks = {5, 7, 9};
    t.window_pos_embed_bkg_spatial_size = {7, 7};
  } else if (name == "sam2_hiera_s") {
    t.embed_dim = 96, t.num_heads = 1, t.stages = {1, 2, 11, 2}, t.global_att_blocks = {7, 10, 13};
    t.window_pos_embed_bkg_spatial_size = {7, 7};
  } else if (name == "sam2_hiera_b+") {
    t.embed_dim = 112, t.num_heads = 2, t.stages = {2, 3, 16, 3}, t.global_att_blocks = {12, 16, 20};
    t.window_pos_embed_bkg_spatial_size = {14, 14};
  } else if (name == "sam2_hiera_l") {
    t.embed_dim = 144, t.num_heads = 2, t.stages = {2, 6, 36, 4}, t.global_att_blocks = {23, 33, 43};
    t.window_spec = {8, 4, 16, 8}, t.window_pos_embed_bkg_spatial_size = {7, 7};
  } else if (name == "sam2_tiny") {
    // tests/data/sam2_tiny/fixture.json config.hydra_overrides
    c.image_size = 128;
    t.embed_dim = 8, t.num_heads = 1, t.stages = {1, 2, 3, 1}, t.global_att_blocks = {4};
    t.window_spec = {8, 4, 6, 4}, t.window_pos_embed_bkg_spatial_size = {7, 7};
    c.neck.d_model = 16;
    c.decoder.transformer_dim = 16;
  } else {
    throw ConfigError("unknown SAM 2 model type '" + name +
                      "': use auto, sam2_hiera_t, sam2_hiera_s, sam2_hiera_b+, sam2_hiera_l or sam2_tiny");
  }
  c.neck.backbone_channel_list = t.channel_list();
  return c;
}

}  // namespace semat::models
