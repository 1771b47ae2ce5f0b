#include "semat/models/internal/sam2/build.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <set>

#include "semat/core/error.h"
#include "semat/models/internal/sam/build.h"

namespace semat::models::sam2 {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

bool has_prefix(const io::Checkpoint& ck, const std::string& prefix) {
  return std::any_of(ck.tensors.begin(), ck.tensors.end(),
                     [&](const io::TensorData& t) { return starts_with(t.name, prefix); });
}

// Distinct indexes i of keys "<prefix><i>.".
int64_t count_indexed(const io::Checkpoint& ck, const std::string& prefix) {
  std::set<int64_t> idx;
  for (const auto& t : ck.tensors) {
    if (!starts_with(t.name, prefix)) continue;
    const std::string rest = t.name.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || rest.find_first_not_of("0123456789") != dot) continue;
    if (dot > 6) continue;  // no layer count comes near a million
    idx.insert(std::stoll(rest.substr(0, dot)));
  }
  // Indexes must be 0..n-1: a gap means a truncated or renamed checkpoint.
  int64_t n = 0;
  for (int64_t i : idx) {
    if (i != n) break;
    ++n;
  }
  return n;
}

std::string shape_str(const std::vector<int64_t>& v) { return io::shape_to_string(v); }

}  // namespace

bool is_sam2_checkpoint(const io::Checkpoint& ck, const std::string& prefix) {
  return has_prefix(ck, prefix + "image_encoder.trunk.") || has_prefix(ck, prefix + "sam_mask_decoder.");
}

bool is_video_only_key(const std::string& n) {
  static const std::set<std::string> names = {"maskmem_tpos_enc", "no_mem_pos_enc", "no_obj_ptr",
                                              "no_obj_embed_spatial"};
  static const std::vector<std::string> modules = {"memory_attention.", "memory_encoder.", "obj_ptr_proj.",
                                                   "obj_ptr_tpos_proj.", "mask_downsample."};
  if (names.count(n)) return true;
  return std::any_of(modules.begin(), modules.end(), [&](const std::string& m) { return starts_with(n, m); });
}

void validate_sam2_config(const models::Sam2Config& c, const std::string& source) {
  const auto& t = c.trunk;
  const auto& d = c.decoder;
  std::string bad;
  auto need = [&bad](bool ok, const char* what) {
    if (!ok && bad.empty()) bad = what;
  };
  const int64_t n = static_cast<int64_t>(t.stages.size());
  need(n >= 2 && n <= 8, "the trunk does not have 2..8 stages");
  need(std::all_of(t.stages.begin(), t.stages.end(), [](int64_t s) { return s >= 1 && s <= 256; }),
       "a trunk stage is empty or has more than 256 blocks");
  need(static_cast<int64_t>(t.window_spec.size()) == n, "window_spec does not have one window per stage");
  need(std::all_of(t.window_spec.begin(), t.window_spec.end(), [](int64_t w) { return w >= 0 && w <= 1024; }),
       "a window is not in 0..1024");
  need(!t.window_spec.empty() && t.window_spec[0] >= 1, "the first stage has no window (pos_embed_window)");
  need(t.in_chans == 3, "the patch embedding does not take 3 colour channels");
  need(t.embed_dim >= 1 && t.num_heads >= 1 && t.q_stride == 2 && t.q_pool >= 0 && t.q_pool <= n - 1,
       "the trunk width, heads or q pooling are invalid");
  need(t.window_pos_embed_bkg_spatial_size.size() == 2, "the background position embedding is not 2-D");
  need(c.image_size >= 1 && c.image_size <= 16384, "the image size is not in 1..16384");
  if (bad.empty()) {
    for (const auto& b : models::hiera_blocks(t)) need(b.heads >= 1 && b.dim_out % b.heads == 0, "heads do not divide a block's width");
    const int64_t tokens = c.image_size / t.patch_stride;
    need(c.image_size % (t.patch_stride << (n - 1)) == 0, "the image size is not a multiple of the coarsest stage stride");
    need(tokens % t.window_spec[0] == 0, "the token grid is not a multiple of the first window");
    need(c.neck.backbone_channel_list == t.channel_list(), "the neck's input widths differ from the trunk's stages");
    need(c.neck.scalp >= 0 && n - c.neck.scalp >= 3, "the neck keeps fewer than 3 levels");
    need((t.patch_stride << std::max<int64_t>(0, n - 1 - c.neck.scalp)) == c.backbone_stride,
         "the image embedding's stride is not the backbone stride");
  }
  need(c.neck.d_model == d.transformer_dim, "the neck and mask decoder widths differ");
  need(d.num_heads >= 1 && d.transformer_dim % (2 * d.num_heads) == 0 && d.transformer_dim % 8 == 0,
       "the mask decoder width is not a multiple of 8 and of twice its heads");
  need(c.mask_in_chans >= 4 && c.mask_in_chans % 4 == 0, "the mask embedding width is not a multiple of 4");
  need(d.depth >= 1 && d.depth <= 64 && d.mlp_dim >= 1 && d.iou_head_hidden_dim >= 1 && d.iou_head_depth >= 1 &&
           d.iou_head_depth <= 64,
       "the mask decoder's depth or MLPs are invalid");
  need(d.num_multimask_outputs >= 1 && d.num_multimask_outputs <= 64, "the mask decoder has no multimask outputs");
  need(d.use_high_res_features, "the mask decoder has no high-res skips (conv_s0 / conv_s1)");
  SEMAT_CHECK(bad.empty(), CheckpointError,
              "'" << source << "': inconsistent SAM 2 shapes: " << bad << " (a corrupt or foreign checkpoint)");
}

models::Sam2Config infer_sam2_config(const io::Checkpoint& ck, const std::string& prefix) {
  const auto key = [&](const std::string& k) { return prefix + k; };
  const auto shape = [&](const std::string& k, size_t rank) -> const std::vector<int64_t>& {
    return sam::checked_shape(ck, key(k), rank);
  };
  const std::string tr = "image_encoder.trunk.";
  for (const char* k : {"image_encoder.trunk.patch_embed.proj.weight", "image_encoder.trunk.pos_embed",
                        "image_encoder.trunk.pos_embed_window", "image_encoder.neck.convs.0.conv.weight",
                        "sam_prompt_encoder.no_mask_embed.weight", "sam_mask_decoder.iou_token.weight",
                        "no_mem_embed"})
    SEMAT_CHECK(ck.find(key(k)), CheckpointError,
                "'" << ck.source << "' is not a SAM 2 checkpoint: " << key(k) << " is missing");
  models::Sam2Config c;
  auto& t = c.trunk;
  const auto& pw = shape(tr + "patch_embed.proj.weight", 4);  // [E, 3, 7, 7]
  t.embed_dim = pw[0], t.in_chans = pw[1];
  SEMAT_CHECK(pw[2] == 7 && pw[3] == 7, CheckpointError,
              "'" << ck.source << "': " << key(tr + "patch_embed.proj.weight") << " has shape " << shape_str(pw)
                  << "; Hiera's patch embedding is a 7x7 convolution");
  const auto& pos = shape(tr + "pos_embed", 4);  // [1, E, h, w]
  const auto& pwin = shape(tr + "pos_embed_window", 4);  // [1, E, w0, w0]
  SEMAT_CHECK(pos[1] == t.embed_dim && pwin[1] == t.embed_dim && pwin[2] == pwin[3], CheckpointError,
              "'" << ck.source << "': " << key(tr + "pos_embed") << " " << shape_str(pos) << " / "
                  << key(tr + "pos_embed_window") << " " << shape_str(pwin) << " do not match the "
                  << t.embed_dim << "-channel patch embedding");
  t.window_pos_embed_bkg_spatial_size = {pos[2], pos[3]};
  const int64_t depth = count_indexed(ck, key(tr + "blocks."));
  SEMAT_CHECK(depth >= 1, CheckpointError, "'" << ck.source << "': no " << key(tr + "blocks.0.*") << " entries");
  t.stages.clear();
  int64_t dim = t.embed_dim;
  for (int64_t i = 0; i < depth; ++i) {
    const std::string b = tr + "blocks." + std::to_string(i) + ".";
    const auto& qkv = shape(b + "attn.qkv.weight", 2);  // [3 dim_out, dim]
    SEMAT_CHECK(qkv[0] % 3 == 0 && qkv[1] == dim, CheckpointError,
                "'" << ck.source << "': " << key(b + "attn.qkv.weight") << " has shape " << shape_str(qkv)
                    << "; expected [3 x width, " << dim << "]");
    const int64_t dim_out = qkv[0] / 3;
    if (i == 0 || dim_out != dim) t.stages.push_back(0);
    t.stages.back() += 1;
    dim = dim_out;
  }
  SEMAT_CHECK(t.stages.size() >= 2 && t.stages.size() <= 8, CheckpointError,
              "'" << ck.source << "': the trunk blocks form " << t.stages.size() << " stages; expected 2..8");
  auto& n = c.neck;
  const int64_t levels = count_indexed(ck, key("image_encoder.neck.convs."));
  n.backbone_channel_list.clear();
  for (int64_t i = 0; i < levels; ++i) {
    const std::string k = "image_encoder.neck.convs." + std::to_string(i) + ".conv.weight";
    const auto& w = shape(k, 4);
    if (i == 0) n.d_model = w[0];
    SEMAT_CHECK(w[0] == n.d_model && w[2] == 1 && w[3] == 1, CheckpointError,
                "'" << ck.source << "': " << key(k) << " has shape " << shape_str(w) << "; expected ["
                    << n.d_model << ", C, 1, 1]");
    n.backbone_channel_list.push_back(w[1]);
  }
  c.mask_in_chans = shape("sam_prompt_encoder.mask_downscaling.3.weight", 4)[0];
  SEMAT_CHECK(c.mask_in_chans % 4 == 0, CheckpointError,
              "'" << ck.source << "': " << key("sam_prompt_encoder.mask_downscaling.3.weight") << " has "
                  << c.mask_in_chans << " output channels; expected a multiple of 4");
  auto& d = c.decoder;
  d.transformer_dim = shape("sam_mask_decoder.iou_token.weight", 2)[1];
  d.num_multimask_outputs = shape("sam_mask_decoder.mask_tokens.weight", 2)[0] - 1;
  SEMAT_CHECK(d.num_multimask_outputs >= 1, CheckpointError,
              "'" << ck.source << "': " << key("sam_mask_decoder.mask_tokens.weight")
                  << " holds one token; SAM 2 has a single-mask token and at least one multimask token");
  d.depth = count_indexed(ck, key("sam_mask_decoder.transformer.layers."));
  SEMAT_CHECK(d.depth >= 1, CheckpointError,
              "'" << ck.source << "': no " << key("sam_mask_decoder.transformer.layers.0.*") << " entries");
  d.mlp_dim = shape("sam_mask_decoder.transformer.layers.0.mlp.layers.0.weight", 2)[0];
  d.iou_head_depth = count_indexed(ck, key("sam_mask_decoder.iou_prediction_head.layers."));
  d.iou_head_hidden_dim = shape("sam_mask_decoder.iou_prediction_head.layers.0.weight", 2)[0];
  d.pred_obj_scores = ck.find(key("sam_mask_decoder.obj_score_token.weight")) != nullptr;
  d.use_high_res_features = ck.find(key("sam_mask_decoder.conv_s0.weight")) != nullptr;

  // Heads, global blocks, windows and the input size are not in the shapes: take them from the
  // preset whose trunk has these shapes.
  const models::Sam2Config* match = nullptr;
  static const std::vector<models::Sam2Config> presets = [] {
    std::vector<models::Sam2Config> v;
    for (const auto& name : models::sam2_preset_names()) v.push_back(models::sam2_preset(name));
    return v;
  }();
  for (const auto& p : presets)
    if (p.trunk.embed_dim == t.embed_dim && p.trunk.stages == t.stages &&
        p.trunk.window_pos_embed_bkg_spatial_size == t.window_pos_embed_bkg_spatial_size &&
        p.trunk.window_spec.at(0) == pwin[2] && p.neck.d_model == n.d_model)
      match = &p;
  std::string stages;
  for (int64_t s : t.stages) stages += (stages.empty() ? "" : ",") + std::to_string(s);
  SEMAT_CHECK(match, CheckpointError,
              "'" << ck.source << "': no SAM 2 model has a Hiera trunk of width " << t.embed_dim << " with stages ["
                  << stages << "] (supported: sam2_hiera_t, sam2_hiera_s, sam2_hiera_b+, sam2_hiera_l and the "
                  << "SAM 2.1 checkpoints of the same sizes)");
  models::Sam2Config out = *match;
  out.trunk.in_chans = t.in_chans;
  out.neck.backbone_channel_list = n.backbone_channel_list;
  out.mask_in_chans = c.mask_in_chans;
  d.num_heads = out.decoder.num_heads;
  out.decoder = d;
  validate_sam2_config(out, ck.source);
  if (!(out == *match)) out.name = "custom";
  return out;
}

void load_sam2_weights(torch::nn::Module& module, const io::Checkpoint& ck, const std::string& prefix,
                       bool only_prefix) {
  auto expected = sam::expected_tensors(module, prefix);
  std::set<std::string> skip;
  for (const auto& t : ck.tensors)
    if (starts_with(t.name, prefix) && is_video_only_key(t.name.substr(prefix.size()))) {
      expected.push_back({t.name, t.shape});
      skip.insert(t.name);
    }
  io::TensorCheckOptions o;
  if (only_prefix) o.only_prefixes = {prefix};
  io::check_tensors(ck, expected, o);
  torch::NoGradGuard no_grad;
  auto assign = [&](const std::string& k, torch::Tensor& dst) {
    const io::TensorData* src = ck.find(prefix + k);
    if (src) dst.copy_(sam::tensor_view(*src));
  };
  for (auto& p : module.named_parameters(true)) assign(p.key(), p.value());
  for (auto& b : module.named_buffers(true)) assign(b.key(), b.value());
}

Sam2Base build_sam2(const io::Checkpoint& ck, const std::string& model_type, torch::ScalarType encoder_dtype) {
  return sam::with_checkpoint_errors(ck.source, [&] {
    SEMAT_CHECK(is_sam2_checkpoint(ck), CheckpointError,
                "'" << ck.source << "' is not a SAM 2 checkpoint (no image_encoder.trunk / sam_mask_decoder entries)");
    models::Sam2Config cfg;
    if (model_type == "auto") {
      cfg = infer_sam2_config(ck);
    } else {
      cfg = models::sam2_preset(model_type);
      validate_sam2_config(cfg, ck.source);
    }
    Sam2Base model(cfg);
    // Every trunk parameter is overwritten by the strict load below: no float32 copy first.
    if (encoder_dtype != torch::kFloat) model->image_encoder->trunk->set_compute_dtype(encoder_dtype, /*convert=*/false);
    load_sam2_weights(*model, ck);
    model->eval();
    return model;
  });
}

}  // namespace semat::models::sam2

namespace semat::models {

Sam2ParameterCounts sam2_parameter_counts(const Sam2Config& cfg) {
  torch::NoGradGuard g;
  sam2::Sam2Base m(cfg);
  auto count = [](const torch::nn::Module& mod) {
    int64_t n = 0;
    for (const auto& p : mod.named_parameters(true)) n += p.value().numel();
    for (const auto& b : mod.named_buffers(true)) n += b.value().numel();
    return n;
  };
  Sam2ParameterCounts c;
  c.trunk = count(*m->image_encoder->trunk);
  c.neck = count(*m->image_encoder->neck);
  c.prompt_encoder = count(*m->sam_prompt_encoder);
  c.mask_decoder = count(*m->sam_mask_decoder);
  c.no_mem_embed = m->no_mem_embed.numel();
  c.image_model = c.trunk + c.neck + c.prompt_encoder + c.mask_decoder + c.no_mem_embed;
  // Sums over tests/data/sam2_tiny/keys_sam2_hiera_*.txt (SAM2Base state dicts, SAM 2.0 layout).
  static const std::map<std::string, int64_t> official = {{"sam2_hiera_t", 38946242},
                                                          {"sam2_hiera_s", 46044098},
                                                          {"sam2_hiera_b+", 80833922},
                                                          {"sam2_hiera_l", 224430386}};
  const auto it = official.find(cfg.name);
  c.official_full = it == official.end() ? 0 : it->second;
  return c;
}

}  // namespace semat::models
