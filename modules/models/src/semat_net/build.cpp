#include "semat/models/internal/semat_net/build.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <set>

#include "semat/core/error.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/sam/mask_decoder_hq.h"
#include "semat/models/internal/sam2/build.h"

namespace semat::models::semat_net {
namespace {

const std::string kEncoderPrefix = "sam_model.image_encoder.base_model.model.";
const std::string kSupported =
    "supported: official SEMat_SAM, SEMat_HQ-SAM (SAM / HQ-SAM ViT-B/L/H backbones) and "
    "SEMat_SAM2 (Hiera-T/S/B+/L) checkpoints, and plain SAM or HQ-SAM ViT-B/L/H checkpoints as a "
    "training start";
const std::string kSam2Prefix = "sam_model.sam_mask_decoder.";


bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

bool any_key(const io::Checkpoint& ck, const std::function<bool(const std::string&)>& pred) {
  return std::any_of(ck.tensors.begin(), ck.tensors.end(),
                     [&](const io::TensorData& t) { return pred(t.name); });
}

bool has_prefix(const io::Checkpoint& ck, const std::string& p) {
  return any_key(ck, [&](const std::string& n) { return starts_with(n, p); });
}

// The segment-anything / sam2 name of a SEMat key of the SAM (2) part, or "" for SEMat's own
// parts.
std::string sam_key_for(const std::string& key) {
  if (key.find(".bbox_mask_patch_embed.") != std::string::npos) return "";
  if (key.find(".lora_") != std::string::npos) return "";
  if (starts_with(key, kEncoderPrefix)) {
    std::string k = "image_encoder." + key.substr(kEncoderPrefix.size());
    const size_t b = k.find(".base_layer.");
    if (b != std::string::npos) k.erase(b, std::string(".base_layer").size());
    return k;
  }
  if (starts_with(key, "sam_model.prompt_encoder.") ||
      starts_with(key, "sam_model.sam_prompt_encoder.") || key == "sam_model.no_mem_embed")
    return key.substr(10);
  if (starts_with(key, kSam2Prefix) && !starts_with(key, kSam2Prefix + "matting_"))
    return key.substr(10);
  if (starts_with(key, "sam_model.mask_decoder.") &&
      !starts_with(key, "sam_model.mask_decoder.matting_"))
    return key.substr(10);
  return "";
}

// A shapes-only view of the SAM part of a SEMat checkpoint under segment-anything names.
io::Checkpoint sam_shapes_view(const io::Checkpoint& ck) {
  io::Checkpoint v;
  v.source = ck.source;
  v.format = ck.format;
  for (const auto& t : ck.tensors) {
    const std::string k = sam_key_for(t.name);
    if (k.empty()) continue;
    io::TensorData d;
    d.name = k;
    d.dtype = t.dtype;
    d.shape = t.shape;
    v.tensors.push_back(std::move(d));
  }
  return v;
}

// The checkpoint's video-only entries by name (is_sam2_video_only_key), for the strict check's
// accepted-but-not-loaded list.
io::TensorCheckOptions accepting_video_entries(const io::Checkpoint& ck) {
  io::TensorCheckOptions opts;
  for (const auto& t : ck.tensors)
    if (is_sam2_video_only_key(t.name)) opts.allow_unexpected_prefixes.push_back(t.name);
  return opts;
}

bool is_semat_sam2(const io::Checkpoint& ck) {
  return has_prefix(ck, kSam2Prefix) || has_prefix(ck, kEncoderPrefix + "trunk.");
}

// Plain SAM 2 checkpoints (sam2_hiera_*.pt) are not SEMat weights, and cannot start a SEMat
// training run of the SAM / HQ-SAM variants.
void refuse_other_variants(const io::Checkpoint& ck) {
  SEMAT_CHECK(!has_prefix(ck, "image_encoder.trunk.") && !has_prefix(ck, "memory_attention.") &&
                  !has_prefix(ck, "sam_mask_decoder."),
              CheckpointError,
              "'" << ck.source
                  << "' is a plain SAM 2 checkpoint: give SEMat weights with --semat (SEMat_SAM2.pth) "
                     "or train from it with \"backbone\": \"sam2\" ("
                  << kSupported << ")");
}


int64_t count_indexed(const io::Checkpoint& ck, const std::string& prefix) {
  std::set<int64_t> idx;
  for (const auto& t : ck.tensors) {
    if (!starts_with(t.name, prefix)) continue;
    try {
      idx.insert(std::stoll(
          t.name.substr(prefix.size(), t.name.find('.', prefix.size()) - prefix.size())));
    } catch (const std::exception&) {
    }
  }
  return static_cast<int64_t>(idx.size());
}

// Every size read here is checked (rank, non-zero) before it is used: see sam::checked_shape.
const std::vector<int64_t>& shape(const io::Checkpoint& ck, const std::string& key, size_t rank) {
  return sam::checked_shape(ck, key, rank);
}

// SEMat_SAM2: the preset whose Hiera width and depth and SAM 2 decoder width the shapes show.
// Heads, windows and global blocks are not in the shapes; the official configurations differ
// in these three numbers.
models::SematConfig infer_semat_sam2_config(
    const io::Checkpoint& ck,
    const std::string& patch_key = kEncoderPrefix + "trunk.patch_embed.proj.base_layer.weight",
    const std::string& blocks = kEncoderPrefix + "trunk.blocks.",
    const std::string& iou_key = kSam2Prefix + "iou_token.weight") {
  const int64_t E = shape(ck, patch_key, 4)[0];
  const int64_t depth = count_indexed(ck, blocks);
  const int64_t D = shape(ck, iou_key, 2)[1];
  std::string names;
  for (const auto& name : models::semat_preset_names()) {
    const models::SematConfig p = models::semat_preset(name);
    if (!p.sam2) continue;
    if (p.sam2_base.trunk.embed_dim == E && p.sam2_base.trunk.depth() == depth &&
        p.sam.decoder.transformer_dim == D)
      return p;
    names += (names.empty() ? "" : ", ") + name;
  }
  throw CheckpointError("'" + ck.source + "': a SEMat SAM2 checkpoint with Hiera width " +
                        std::to_string(E) + ", depth " + std::to_string(depth) +
                        " and decoder width " + std::to_string(D) + " matches none of " + names);
}

models::MattingDecoderConfig infer_matting_decoder(const io::Checkpoint& ck, int64_t global_blocks) {
  models::MattingDecoderConfig m;
  const std::string p = "matting_decoder.";
  m.img_feat_in = shape(ck, p + "big_kernel_process.0.weight", 4)[1];
  m.vit_feat_index.clear();
  for (const auto& t : ck.tensors) {
    if (!starts_with(t.name, p + "vit_feat_proj.") || !ends_with(t.name, ".weight")) continue;
    const std::string idx = t.name.substr(p.size() + 14, t.name.size() - p.size() - 14 - 7);
    // Indexes name global-block outputs: small decimal numbers.
    SEMAT_CHECK(!idx.empty() && idx.size() <= 3 && std::all_of(idx.begin(), idx.end(), ::isdigit) &&
                    std::stoll(idx) < global_blocks,
                CheckpointError,
                "'" << ck.source << "': " << t.name << " does not name one of the " << global_blocks
                    << " global attention blocks");
    m.vit_feat_index.push_back(std::stoll(idx));
    m.vit_feat_in = shape(ck, t.name, 4)[1];
  }
  std::sort(m.vit_feat_index.begin(), m.vit_feat_index.end());
  SEMAT_CHECK(!m.vit_feat_index.empty(), CheckpointError,
              "'" << ck.source << "': no matting_decoder.vit_feat_proj.* weights");
  const auto n = static_cast<int64_t>(m.vit_feat_index.size());
  SEMAT_CHECK(m.vit_feat_in % n == 0, CheckpointError,
              "'" << ck.source << "': matting_decoder.vit_feat_proj width " << m.vit_feat_in
                  << " is not a multiple of its " << n << " inputs");
  m.down.clear();
  m.up.clear();
  for (int64_t i = 0, k = count_indexed(ck, p + "down_blks."); i < k; ++i) {
    const auto& w = shape(ck, p + "down_blks." + std::to_string(i) + ".res_layer.weight", 4);
    m.down.emplace_back(w[1], w[0]);
  }
  for (int64_t i = 0, k = count_indexed(ck, p + "up_blks."); i < k; ++i) {
    const auto& w = shape(ck, p + "up_blks." + std::to_string(i) + ".res_layer.weight", 4);
    m.up.emplace_back(w[1], w[0]);
  }
  // The decoder is a U-Net: each up block takes the skip of the matching down block.
  SEMAT_CHECK(!m.down.empty() && !m.up.empty() && m.up.size() <= m.down.size(), CheckpointError,
              "'" << ck.source << "': matting_decoder has " << m.down.size() << " down and " << m.up.size()
                  << " up blocks; expected at least one of each and no more up than down blocks");
  m.head_in = shape(ck, p + "matting_head.weight", 4)[1];
  return m;
}

// Copies every tensor of `sources` (first one found wins) into the module, after a strict check
// of names and shapes against the union of the sources.
void load_from(torch::nn::Module& module, const std::vector<const io::Checkpoint*>& sources,
               const std::vector<io::ExpectedTensor>& optional, const std::vector<std::string>& optional_prefixes) {
  auto expected = sam::expected_tensors(module);
  expected.insert(expected.end(), optional.begin(), optional.end());
  // One view of all sources for check_tensors' single report.
  io::Checkpoint merged;
  merged.source = sources.front()->source;
  if (sources.size() > 1) merged.source += " + " + sources[1]->source;
  std::set<std::string> seen;
  std::map<std::string, const io::TensorData*> by_name;
  for (const io::Checkpoint* ck : sources) {
    for (const auto& t : ck->tensors) {
      if (!seen.insert(t.name).second) continue;
      io::TensorData d;
      d.name = t.name, d.dtype = t.dtype, d.shape = t.shape;
      merged.tensors.push_back(std::move(d));
      by_name[t.name] = &t;
    }
  }
  io::TensorCheckOptions opts;
  opts.optional_prefixes = optional_prefixes;
  io::check_tensors(merged, expected, opts);
  torch::NoGradGuard no_grad;
  auto assign = [&](const std::string& key, torch::Tensor& dst) {
    const auto it = by_name.find(key);
    if (it != by_name.end()) dst.copy_(sam::tensor_view(*it->second));
  };
  for (auto& p : module.named_parameters(true)) assign(p.key(), p.value());
  for (auto& b : module.named_buffers(true)) assign(b.key(), b.value());
}

// A SAM checkpoint renamed to SEMat keys (and, with `frozen`, duplicated into the frozen
// decoder). The tensors are copied: a SAM checkpoint is loaded once per model build.
io::Checkpoint sam_as_semat(const io::Checkpoint& sam, bool frozen) {
  io::Checkpoint out;
  out.source = sam.source;
  out.format = sam.format;
  for (const auto& t : sam.tensors) {
    io::TensorData d = t;
    d.name = semat_key_for_sam_key(t.name);
    out.tensors.push_back(std::move(d));
    if (frozen && starts_with(t.name, "mask_decoder.")) {
      io::TensorData f = t;
      f.name = "sam_model.frozen_" + t.name;
      out.tensors.push_back(std::move(f));
    }
  }
  return out;
}

}  // namespace

bool is_sam2_video_only_key(const std::string& key) {
  return starts_with(key, "sam_model.") && sam2::is_video_only_key(key.substr(10));
}

bool is_semat_checkpoint(const io::Checkpoint& ck) {
  return has_prefix(ck, "sam_model.") || has_prefix(ck, "matting_decoder.") ||
         has_prefix(ck, "condition_layer.");
}

std::string semat_key_for_sam_key(const std::string& k) {
  if (starts_with(k, "image_encoder.")) {
    std::string rest = k.substr(14);
    // peft wraps every module whose name ends with "qkv" or "proj": in SAM's ViT
    // patch_embed.proj and blocks.N.attn.{qkv,proj}; in SAM 2's trunk also the stage-change
    // shortcuts blocks.N.proj (the neck has none).
    const bool hiera = starts_with(rest, "trunk.");
    for (const char* leaf : {".weight", ".bias"}) {
      if (!ends_with(rest, leaf)) continue;
      const std::string mod = rest.substr(0, rest.size() - std::string(leaf).size());
      if (mod == "patch_embed.proj" || ends_with(mod, ".attn.qkv") || ends_with(mod, ".attn.proj") ||
          (hiera && (ends_with(mod, ".proj") || ends_with(mod, ".qkv"))))
        rest = mod + ".base_layer" + leaf;
    }
    return kEncoderPrefix + rest;
  }
  return "sam_model." + k;
}

models::SematConfig infer_semat_config(const io::Checkpoint& ck, const io::Checkpoint* sam_base) {
  refuse_other_variants(ck);
  if (is_semat_sam2(ck)) {
    SEMAT_CHECK(sam_base == nullptr, CheckpointError,
                "'" << ck.source
                    << "' is a SEMat SAM2 checkpoint, which carries its SAM 2 weights: give it "
                       "without --sam");
    return infer_semat_sam2_config(ck);
  }
  SEMAT_CHECK(is_semat_checkpoint(ck), CheckpointError,
              "'" << ck.source << "' is "
                  << (has_prefix(ck, "image_encoder.") ? "a plain SAM checkpoint"
                                                       : "not a SEMat checkpoint")
                  << ", not a SEMat one: give SEMat weights with --semat (a SAM checkpoint only "
                     "serves as --sam base weights or as a training start) ("
                  << kSupported << ")");
  SEMAT_CHECK(has_prefix(ck, "matting_decoder.") &&
                  has_prefix(ck, "sam_model.mask_decoder.matting_hf_token.") &&
                  has_prefix(ck, "condition_layer.patch_embed."),
              CheckpointError,
              "'" << ck.source
                  << "': matting_decoder.*, sam_model.mask_decoder.matting_* "
                     "or condition_layer.patch_embed.* weights are missing ("
                  << kSupported << ")");
  models::SamConfig sam_cfg;
  if (has_prefix(ck, kEncoderPrefix + "pos_embed")) {
    sam_cfg = sam::infer_sam_config(sam_shapes_view(ck));
  } else {
    SEMAT_CHECK(sam_base != nullptr, CheckpointError,
                "'" << ck.source << "' holds only SEMat's own weights (no " << kEncoderPrefix
                    << "*): also give the SAM checkpoint it was trained on with --sam");
    refuse_other_variants(*sam_base);
    sam_cfg = sam::infer_sam_config(*sam_base);
    // A slim SEMat_HQ-SAM checkpoint may carry the HQ parts itself; usually they are frozen
    // HQ-SAM weights that the base (sam_hq_vit_*.pth) supplies. A slim HQ checkpoint without HQ
    // parts over a plain SAM base cannot be told from a SEMat_SAM one.
    sam_cfg.hq = sam_cfg.hq || has_prefix(ck, "sam_model.mask_decoder.hf_token.");
  }
  models::SematConfig c = models::semat_config_for(sam_cfg);
  c.matting_tokens = shape(ck, "sam_model.mask_decoder.matting_hf_token.weight", 2)[0];
  c.matting_decoder =
      infer_matting_decoder(ck, static_cast<int64_t>(sam_cfg.encoder.global_attn_indexes.size()));
  const std::string lora_key = kEncoderPrefix + "patch_embed.proj.lora_A.default.weight";
  // patch_embed is a convolution, so its LoRA A is one too: [rank, 3, p, p].
  if (ck.find(lora_key)) c.lora_rank = shape(ck, lora_key, 4)[0];  // alpha stays 16 (SEMat_SAM.py)
  for (const auto& name : models::semat_preset_names()) {
    models::SematConfig p = models::semat_preset(name);
    // The decoder's head count is not in the shapes: adopt the preset's when all else matches.
    c.sam.decoder.num_heads = p.sam.decoder.num_heads;
    if (p == c) return p;
  }
  c.sam.decoder.num_heads = 8;
  c.name = "custom";
  return c;
}

SematModel build_semat(const io::Checkpoint& ck, const io::Checkpoint* sam_base,
                       const std::string& model_type) {
  return sam::with_checkpoint_errors(ck.source, [&] {
    const models::SematConfig inferred = infer_semat_config(ck, sam_base);
    models::SematConfig cfg = inferred;
    if (model_type != "auto") {
      cfg = models::semat_preset(model_type);
      SEMAT_CHECK(cfg == inferred || (inferred.name == "custom"), CheckpointError,
                  "'" << ck.source << "' is a " << inferred.name << " checkpoint, not " << model_type
                      << ": use --model-type auto or " << inferred.name);
    }
    torch::NoGradGuard no_grad;
    SematModel model(cfg);
    if (cfg.sam2) {
      // Strict on everything the image path uses; the video modules are accepted, not loaded.
      sam::load_weights(*model, ck, accepting_video_entries(ck));
      model->eval();
      return model;
    }
    std::vector<const io::Checkpoint*> sources{&ck};
    io::Checkpoint base;
    if (sam_base) {
      base = sam_as_semat(*sam_base, /*frozen=*/false);
      sources.push_back(&base);
    }
    // Training checkpoints may carry the frozen SAM decoder, which inference does not use: it is
    // not loaded, but held to the shapes of the SAM decoder like every other key (strict loading
    // for every prefix). HQ-SAM's frozen decoder carries the HQ token and fusion layers too.
    sam::MaskDecoderHQ frozen(cfg.sam.decoder, cfg.sam.encoder.embed_dim, cfg.sam.hq);
    load_from(*model, sources, sam::expected_tensors(*frozen, kFrozenDecoderPrefix), {kFrozenDecoderPrefix});
    model->eval();
    return model;
  });
}

namespace {

// SEMat_SAM2's training start (_load_checkpoint with add_new_layer_weights=True on
// sam2_hiera_*.pt): the SAM 2 weights strictly (video modules accepted, not loaded), then the
// new layers synthesised from them: bbox_mask_patch_embed = [patch_embed, its mean over the 3
// input channels] (bias copied), matting_mask_tokens = the mean mask token, each matting MLP =
// hypernetwork MLP 0, matting_output_upscaling = output_upscaling. LoRA: A ~ N(0, 1/r), B = 0.
SematModel build_semat_sam2_from_sam2(const io::Checkpoint& base) {
  const models::SematConfig cfg = infer_semat_sam2_config(base, "image_encoder.trunk.patch_embed.proj.weight",
                                                          "image_encoder.trunk.blocks.",
                                                          "sam_mask_decoder.iou_token.weight");
  SematModel model(cfg);
  io::Checkpoint renamed;
  renamed.source = base.source;
  for (const auto& t : base.tensors) {
    io::TensorData d = t;
    d.name = semat_key_for_sam_key(t.name);
    renamed.tensors.push_back(std::move(d));
  }
  std::vector<io::ExpectedTensor> expected;
  for (const auto& e : sam::expected_tensors(*model))
    if (!sam_key_for(e.name).empty()) expected.push_back(e);
  io::check_tensors(renamed, expected, accepting_video_entries(renamed));
  torch::NoGradGuard no_grad;
  std::map<std::string, const io::TensorData*> by_name;
  for (const auto& t : renamed.tensors) by_name[t.name] = &t;
  for (auto& p : model->named_parameters(true)) {
    const auto it = by_name.find(p.key());
    if (it != by_name.end() && !sam_key_for(p.key()).empty())
      p.value().copy_(sam::tensor_view(*it->second));
  }
  auto& trunk = *model->sam2_model->encoder->trunk;
  const auto& pe = trunk.patch_embed->proj;  // base_layer after LoRA wrapping: the same module
  const auto& box = trunk.bbox_mask_patch_embed->proj;
  box->weight.copy_(torch::cat({pe->weight, pe->weight.mean(1, true)}, 1));
  box->bias.copy_(pe->bias);
  auto& dec = *model->sam2_model->sam_mask_decoder;
  dec.matting_mask_tokens->weight.copy_(
      dec.mask_tokens->weight.mean(0, true).expand_as(dec.matting_mask_tokens->weight));
  auto copy_params = [](torch::nn::Module& dst, const torch::nn::Module& src) {
    const auto from = src.named_parameters(true);
    for (auto& p : dst.named_parameters(true)) p.value().copy_(from[p.key()]);
  };
  for (const auto& m : *dec.matting_output_hypernetworks_mlps)
    copy_params(*m, *dec.output_hypernetworks_mlps[0]);
  copy_params(*dec.matting_output_upscaling, *dec.output_upscaling);
  model->set_trainable();
  return model;
}

}  // namespace

SematModel build_semat_from_sam(const io::Checkpoint& sam_ckpt, bool with_frozen_decoder) {
  return sam::with_checkpoint_errors(sam_ckpt.source, [&] {
    if (has_prefix(sam_ckpt, "image_encoder.trunk.") && !is_semat_checkpoint(sam_ckpt))
      return build_semat_sam2_from_sam2(sam_ckpt);
    refuse_other_variants(sam_ckpt);
    SEMAT_CHECK(!is_semat_checkpoint(sam_ckpt), CheckpointError,
                "'" << sam_ckpt.source
                    << "' is already a SEMat checkpoint: load it with --semat "
                       "(a training start needs a plain SAM checkpoint)");
    const models::SamConfig sam_cfg = sam::infer_sam_config(sam_ckpt);
    models::SematConfig cfg = models::semat_config_for(sam_cfg);
    for (const auto& name : models::semat_preset_names()) {
      const models::SematConfig p = models::semat_preset(name);
      models::SamConfig s = sam_cfg;
      s.decoder.num_heads = p.sam.decoder.num_heads;  // not in the shapes
      if (p.sam == s) cfg = p;
    }
    SematModel model(cfg, with_frozen_decoder);
    const io::Checkpoint renamed = sam_as_semat(sam_ckpt, with_frozen_decoder);
    // Strict on the SAM part: every SAM tensor is expected, nothing else is loaded.
    std::vector<io::ExpectedTensor> expected;
    for (const auto& e : sam::expected_tensors(*model)) {
      if (!sam_key_for(e.name).empty() || starts_with(e.name, kFrozenDecoderPrefix))
        expected.push_back(e);
    }
    io::check_tensors(renamed, expected);
    torch::NoGradGuard no_grad;
    std::map<std::string, const io::TensorData*> by_name;
    for (const auto& t : renamed.tensors) by_name[t.name] = &t;
    for (auto& p : model->named_parameters(true)) {
      const auto it = by_name.find(p.key());
      if (it != by_name.end()) p.value().copy_(sam::tensor_view(*it->second));
    }
    model->set_trainable();
    return model;
  });
}

}  // namespace semat::models::semat_net

namespace semat::models {

SematParameterCounts semat_parameter_counts(const SematConfig& config) {
  torch::NoGradGuard no_grad;
  const semat_net::SematModel model(config);
  return model->parameter_counts();
}

}  // namespace semat::models
