#include "semat/models/internal/vitmatte/build.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cctype>
#include <set>

#include "semat/core/error.h"
#include "semat/models/internal/sam/build.h"

namespace semat::models::vitmatte {
namespace {

bool has_prefix(const io::Checkpoint& ck, const std::string& prefix) {
  return std::any_of(ck.tensors.begin(), ck.tensors.end(),
                     [&](const io::TensorData& t) { return t.name.rfind(prefix, 0) == 0; });
}

// The distinct indexes i of keys "<prefix><i>.", sorted.
std::vector<int64_t> indexes(const io::Checkpoint& ck, const std::string& prefix) {
  std::set<int64_t> idx;
  for (const auto& t : ck.tensors) {
    if (t.name.rfind(prefix, 0) != 0) continue;
    const size_t dot = t.name.find('.', prefix.size());
    if (dot == std::string::npos) continue;
    const std::string num = t.name.substr(prefix.size(), dot - prefix.size());
    if (!num.empty() && std::all_of(num.begin(), num.end(), ::isdigit)) idx.insert(std::stoll(num));
  }
  return {idx.begin(), idx.end()};
}

const std::vector<int64_t>& shape(const io::Checkpoint& ck, const std::string& name, size_t rank) {
  const auto& s = ck.at(name).shape;
  SEMAT_CHECK(s.size() == rank, CheckpointError,
              "'" << ck.source << "': " << name << " has shape " << io::shape_to_string(s) << ", expected rank "
                  << rank);
  return s;
}

}  // namespace

models::VitMatteConfig infer_vitmatte_config(const io::Checkpoint& ck) {
  const std::string supported = "supported: ViTMatte-S/B (ViTMatte_{S,B}_{Com,DIS}.pth, as released or as a bare state dict)";
  SEMAT_CHECK(!has_prefix(ck, "model.backbone.") && !has_prefix(ck, "model.decoder."), CheckpointError,
              "'" << ck.source << "' is a DiffMatte checkpoint, not ViTMatte (" << supported << ")");
  SEMAT_CHECK(!has_prefix(ck, "backbone.embeddings.") && !has_prefix(ck, "backbone.encoder.layer."),
              CheckpointError,
              "'" << ck.source << "' is a Hugging Face (transformers) ViTMatte conversion; give the "
                  "original detectron2-layout checkpoint (" << supported << ")");
  SEMAT_CHECK(!has_prefix(ck, "image_encoder.") && !has_prefix(ck, "sam_predictor."), CheckpointError,
              "'" << ck.source << "' is a SAM/SEMat checkpoint, not ViTMatte: give it with --sam or --semat");
  SEMAT_CHECK(ck.find("backbone.patch_embed.proj.weight") && ck.find("backbone.pos_embed") &&
                  ck.find("backbone.blocks.0.attn.rel_pos_h") &&
                  ck.find("decoder.matting_head.matting_convs.0.weight"),
              CheckpointError,
              "'" << ck.source << "' is not a ViTMatte checkpoint: backbone.patch_embed, backbone.pos_embed, "
                  "backbone.blocks.0.attn.rel_pos_h or decoder.matting_head weights are missing ("
                  << supported << ")");
  models::VitMatteConfig c;
  const auto& pw = shape(ck, "backbone.patch_embed.proj.weight", 4);  // [C, in, p, p]
  c.embed_dim = pw[0], c.in_chans = pw[1], c.patch_size = pw[2];
  const auto& pos = shape(ck, "backbone.pos_embed", 3);  // [1, g*g + 1, C]
  c.pretrain_grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(pos[1] - 1))));
  SEMAT_CHECK(c.pretrain_grid * c.pretrain_grid + 1 == pos[1], CheckpointError,
              "'" << ck.source << "': backbone.pos_embed has " << pos[1]
                  << " entries, not a square grid plus a cls entry");
  const auto blocks = indexes(ck, "backbone.blocks.");
  c.depth = static_cast<int64_t>(blocks.size());
  const int64_t head_dim = shape(ck, "backbone.blocks.0.attn.rel_pos_h", 2)[1];
  SEMAT_CHECK(head_dim > 0 && c.embed_dim % head_dim == 0, CheckpointError,
              "'" << ck.source << "': rel-pos width " << head_dim << " does not divide embed dim " << c.embed_dim);
  c.num_heads = c.embed_dim / head_dim;
  c.mlp_dim = shape(ck, "backbone.blocks.0.mlp.fc1.weight", 2)[0];
  // Residual blocks are the global-attention ones (their rel-pos tables size img_size); the
  // others are window blocks (tables of 2 * window - 1 rows).
  c.window_block_indexes.clear();
  c.residual_block_indexes.clear();
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string b = "backbone.blocks." + std::to_string(i) + ".";
    const int64_t rows = shape(ck, b + "attn.rel_pos_h", 2)[0];
    if (ck.find(b + "residual.conv1.weight")) {
      c.residual_block_indexes.push_back(i);
      c.img_size = (rows + 1) / 2 * c.patch_size;
    } else {
      c.window_block_indexes.push_back(i);
      c.window_size = (rows + 1) / 2;
    }
  }
  c.convstream_out.clear();
  for (int64_t k : indexes(ck, "decoder.convstream.convs."))
    c.convstream_out.push_back(shape(ck, "decoder.convstream.convs." + std::to_string(k) + ".conv.weight", 4)[0]);
  c.fusion_out.clear();
  for (int64_t k : indexes(ck, "decoder.fusion_blks."))
    c.fusion_out.push_back(shape(ck, "decoder.fusion_blks." + std::to_string(k) + ".conv.conv.weight", 4)[0]);
  c.head_mid = shape(ck, "decoder.matting_head.matting_convs.0.weight", 4)[0];
  c.name = "custom";
  for (const auto& n : models::vitmatte_preset_names())
    if (models::vitmatte_preset(n) == c) c.name = n;
  return c;
}

VitMatte build_vitmatte(const io::Checkpoint& ck, const std::string& model_type) {
  models::VitMatteConfig cfg = infer_vitmatte_config(ck);  // refuses other families clearly
  if (model_type != "auto") {
    const models::VitMatteConfig want = models::vitmatte_preset(model_type);
    SEMAT_CHECK(want == cfg, CheckpointError,
                "'" << ck.source << "' is a " << cfg.name << " checkpoint (embed " << cfg.embed_dim
                    << ", depth " << cfg.depth << "), not " << model_type << ": use --model-type auto");
    cfg = want;
  }
  VitMatte model(cfg);
  sam::load_weights(*model, ck);
  model->eval();
  return model;
}

}  // namespace semat::models::vitmatte

namespace semat::models {

VitMatteParameterCounts vitmatte_parameter_counts(const VitMatteConfig& config) {
  torch::NoGradGuard no_grad;
  vitmatte::VitMatte m(config);
  auto count = [](const torch::nn::Module& mod) {
    int64_t n = 0;
    for (const auto& p : mod.parameters(true)) n += p.numel();
    return n;
  };
  VitMatteParameterCounts c;
  c.backbone = count(*m->backbone);
  for (const auto& b : *m->backbone->blocks)
    if (auto r = b->as<vitmatte::Block>()->residual) c.residual += count(*r);
  c.decoder = count(*m->decoder);
  c.total = count(*m);
  return c;
}

}  // namespace semat::models
