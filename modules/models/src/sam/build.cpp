#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/sam/common.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"

namespace semat::models::sam {
namespace {

// The shape of `name`, which must exist with `rank` dimensions, each at least 1: shapes are
// divided, multiplied and used to size modules below, so a zero, missing or absurd dimension
// in a crafted checkpoint must stop here, with the key named.
}  // namespace

const std::vector<int64_t>& checked_shape(const io::Checkpoint& ck, const std::string& name, size_t rank) {
  const auto& s = ck.at(name).shape;
  SEMAT_CHECK(s.size() == rank && std::all_of(s.begin(), s.end(), [](int64_t d) { return d >= 1 && d <= (1 << 20); }),
              CheckpointError,
              "'" << ck.source << "': " << name << " has shape " << io::shape_to_string(s) << "; expected " << rank
                  << " dimensions of 1.." << (1 << 20) << " (a corrupt or foreign checkpoint)");
  return s;
}

namespace {

const std::vector<int64_t>& shape_of(const io::Checkpoint& ck, const std::string& name, size_t rank) {
  return checked_shape(ck, name, rank);
}

bool has_prefix(const io::Checkpoint& ck, const std::string& prefix) {
  return std::any_of(ck.tensors.begin(), ck.tensors.end(),
                     [&](const io::TensorData& t) { return t.name.rfind(prefix, 0) == 0; });
}

bool has_substring(const io::Checkpoint& ck, const std::string& s) {
  return std::any_of(ck.tensors.begin(), ck.tensors.end(),
                     [&](const io::TensorData& t) { return t.name.find(s) != std::string::npos; });
}

// Counts the distinct indexes i of keys "<prefix><i>.".
int64_t count_indexed(const io::Checkpoint& ck, const std::string& prefix) {
  std::set<int64_t> idx;
  for (const auto& t : ck.tensors) {
    if (t.name.rfind(prefix, 0) != 0) continue;
    const size_t dot = t.name.find('.', prefix.size());
    try {
      idx.insert(std::stoll(t.name.substr(prefix.size(), dot - prefix.size())));
    } catch (const std::exception&) {
    }
  }
  return static_cast<int64_t>(idx.size());
}

torch::ScalarType scalar_type(io::DType d) {
  switch (d) {
    case io::DType::F32: return torch::kFloat;
    case io::DType::F16: return torch::kHalf;
    case io::DType::BF16: return torch::kBFloat16;
    case io::DType::F64: return torch::kDouble;
    case io::DType::I64: return torch::kLong;
    case io::DType::I32: return torch::kInt;
    case io::DType::I16: return torch::kShort;
    case io::DType::I8: return torch::kChar;
    case io::DType::U8: return torch::kByte;
    case io::DType::Bool: return torch::kBool;
  }
  throw CheckpointError("unsupported tensor dtype");
}

}  // namespace

torch::Device select_device(const std::string& name) {
  if (name == "cuda" || (name == "auto" && torch::cuda::is_available())) {
    SEMAT_CHECK(torch::cuda::is_available(), ConfigError,
                "--device cuda: this LibTorch build has no usable CUDA device; use --device cpu");
    return torch::Device(torch::kCUDA);
  }
  SEMAT_CHECK(name == "cpu" || name == "auto", ConfigError,
              "unknown device '" << name << "': use auto, cpu or cuda");
  return torch::Device(torch::kCPU);
}

void validate_sam_config(const models::SamConfig& c, const std::string& source) {
  const auto& e = c.encoder;
  const auto& d = c.decoder;
  std::string bad;
  auto need = [&bad](bool ok, const char* what) {
    if (!ok && bad.empty()) bad = what;
  };
  need(e.patch_size >= 1 && e.img_size >= e.patch_size && e.img_size % e.patch_size == 0,
       "the image size is not a multiple of the patch size");
  need(e.in_chans == 3, "the patch embedding does not take 3 colour channels");
  need(e.num_heads >= 1 && e.embed_dim % e.num_heads == 0, "the encoder heads do not divide its width");
  need(e.depth >= 1 && e.depth <= 1024, "the encoder depth is not in 1..1024");
  need(e.mlp_ratio > 0, "the encoder MLP is empty");
  need(e.out_chans >= 1, "the neck has no channels");
  bool windowed = false;
  for (int64_t i = 0; i < e.depth; ++i)
    windowed |= std::find(e.global_attn_indexes.begin(), e.global_attn_indexes.end(), i) == e.global_attn_indexes.end();
  need(!windowed || (e.window_size >= 1 && e.window_size <= e.grid()), "the attention window is empty or larger than the grid");
  need(c.prompt.embed_dim == e.out_chans && d.transformer_dim == e.out_chans,
       "the prompt encoder, mask decoder and neck widths differ");
  need(c.prompt.mask_in_chans >= 4 && c.prompt.mask_in_chans % 4 == 0, "the mask embedding width is not a multiple of 4");
  need(d.num_heads >= 1 && d.transformer_dim % (2 * d.num_heads) == 0 && d.transformer_dim % 8 == 0,
       "the mask decoder width is not a multiple of 8 and of twice its heads");
  need(d.depth >= 1 && d.depth <= 64, "the mask decoder depth is not in 1..64");
  need(d.mlp_dim >= 1 && d.iou_head_hidden_dim >= 1, "a mask decoder MLP is empty");
  need(d.num_multimask_outputs >= 1 && d.num_multimask_outputs <= 64, "the mask decoder has no multimask outputs");
  need(d.iou_head_depth >= 1 && d.iou_head_depth <= 64, "the IoU head depth is not in 1..64");
  SEMAT_CHECK(bad.empty(), CheckpointError,
              "'" << source << "': inconsistent SAM shapes: " << bad << " (a corrupt or foreign checkpoint)");
}

models::SamConfig infer_sam_config(const io::Checkpoint& ck, int64_t decoder_heads) {
  const std::string supported =
      "supported: SAM ViT-B/L/H (sam_vit_*.pth), HQ-SAM ViT-B/L/H (sam_hq_vit_*.pth), SAM 2 "
      "(sam2_hiera_*.pt, sam2.1_hiera_*.pt) and SEMat checkpoints";
  SEMAT_CHECK(!has_prefix(ck, "image_encoder.trunk.") && !has_prefix(ck, "memory_attention."),
              CheckpointError, "'" << ck.source << "' is a SAM 2 checkpoint: load it with Sam2Predictor "
                                   "(semat/models/sam2_predictor.h; `semat segment --sam` and the engine pick it "
                                   "by the checkpoint's keys)");
  // Light HQ-SAM (sam_hq_vit_tiny.pth) has a TinyViT encoder: no ViT pos_embed / rel-pos blocks.
  SEMAT_CHECK(!has_prefix(ck, "image_encoder.layers."), CheckpointError,
              "'" << ck.source << "' is a Light HQ-SAM / MobileSAM (TinyViT) checkpoint, which semat "
                                  "does not load (" << supported << ")");
  SEMAT_CHECK(!has_substring(ck, "lora_A") && !has_prefix(ck, "sam_predictor."), CheckpointError,
              "'" << ck.source << "' is a SEMat checkpoint: give it with --semat, not --sam");
  SEMAT_CHECK(ck.find("image_encoder.patch_embed.proj.weight") && ck.find("image_encoder.pos_embed") &&
                  ck.find("mask_decoder.iou_token.weight") && ck.find("prompt_encoder.no_mask_embed.weight"),
              CheckpointError,
              "'" << ck.source << "' is not a SAM checkpoint: image_encoder.patch_embed, "
                  "prompt_encoder and mask_decoder weights are missing (" << supported << ")");
  models::SamConfig c;
  auto& e = c.encoder;
  const auto& pw = shape_of(ck, "image_encoder.patch_embed.proj.weight", 4);  // [D, 3, p, p]
  const auto& pos = shape_of(ck, "image_encoder.pos_embed", 4);              // [1, g, g, D]
  e.embed_dim = pw[0], e.in_chans = pw[1], e.patch_size = pw[2];
  e.img_size = pos[1] * e.patch_size;
  e.depth = count_indexed(ck, "image_encoder.blocks.");
  SEMAT_CHECK(e.depth > 0 && ck.find("image_encoder.blocks.0.attn.rel_pos_h"), CheckpointError,
              "'" << ck.source << "': no image_encoder.blocks with relative positions");
  const int64_t head_dim = shape_of(ck, "image_encoder.blocks.0.attn.rel_pos_h", 2)[1];
  SEMAT_CHECK(e.embed_dim % head_dim == 0, CheckpointError,
              "'" << ck.source << "': image_encoder.blocks.0.attn.rel_pos_h head size " << head_dim
                  << " does not divide the embedding size " << e.embed_dim);
  e.num_heads = e.embed_dim / head_dim;
  e.mlp_ratio = static_cast<double>(shape_of(ck, "image_encoder.blocks.0.mlp.lin1.weight", 2)[0]) / e.embed_dim;
  e.out_chans = shape_of(ck, "image_encoder.neck.0.weight", 4)[0];
  e.global_attn_indexes.clear();
  for (int64_t i = 0; i < e.depth; ++i) {
    const auto& rp = shape_of(ck, "image_encoder.blocks." + std::to_string(i) + ".attn.rel_pos_h", 2);
    if (rp[0] == 2 * e.grid() - 1) e.global_attn_indexes.push_back(i);
    else e.window_size = (rp[0] + 1) / 2;
  }
  c.prompt.embed_dim = shape_of(ck, "prompt_encoder.no_mask_embed.weight", 2)[1];
  c.prompt.mask_in_chans = shape_of(ck, "prompt_encoder.mask_downscaling.3.weight", 4)[0];
  auto& d = c.decoder;
  d.transformer_dim = shape_of(ck, "mask_decoder.iou_token.weight", 2)[1];
  d.depth = count_indexed(ck, "mask_decoder.transformer.layers.");
  d.mlp_dim = shape_of(ck, "mask_decoder.transformer.layers.0.mlp.lin1.weight", 2)[0];
  d.num_heads = decoder_heads;
  d.num_multimask_outputs = shape_of(ck, "mask_decoder.mask_tokens.weight", 2)[0] - 1;
  d.iou_head_depth = count_indexed(ck, "mask_decoder.iou_prediction_head.layers.");
  d.iou_head_hidden_dim = shape_of(ck, "mask_decoder.iou_prediction_head.layers.0.weight", 2)[0];
  // HQ-SAM: the HQ token and fusion layers beside SAM's decoder (their shapes follow from the
  // sizes above; the strict loader checks them).
  c.hq = has_prefix(ck, "mask_decoder.hf_token.") || has_prefix(ck, "mask_decoder.hf_mlp.") ||
         has_prefix(ck, "mask_decoder.compress_vit_feat.");
  validate_sam_config(c, ck.source);
  c.name = "custom";
  for (const auto& n : {"vit_b", "vit_l", "vit_h", "hq_vit_b", "hq_vit_l", "hq_vit_h"})
    if (models::sam_preset(n) == c) c.name = n;
  return c;
}

std::vector<io::ExpectedTensor> expected_tensors(const torch::nn::Module& m, const std::string& prefix) {
  std::vector<io::ExpectedTensor> out;
  for (const auto& p : m.named_parameters(true))
    out.push_back({prefix + p.key(), p.value().sizes().vec()});
  for (const auto& b : m.named_buffers(true)) out.push_back({prefix + b.key(), b.value().sizes().vec()});
  return out;
}

torch::Tensor tensor_view(const io::TensorData& t) {
  return torch::from_blob(const_cast<std::uint8_t*>(t.bytes.data()), t.shape, scalar_type(t.dtype));
}

torch::Tensor from_tensor_data(const io::TensorData& t) { return tensor_view(t).clone(); }

io::TensorData to_tensor_data(const std::string& name, const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kCPU).contiguous();
  io::TensorData d;
  d.name = name;
  d.shape = c.sizes().vec();
  switch (c.scalar_type()) {
    case torch::kFloat: d.dtype = io::DType::F32; break;
    case torch::kDouble: d.dtype = io::DType::F64; break;
    case torch::kLong: d.dtype = io::DType::I64; break;
    case torch::kInt: d.dtype = io::DType::I32; break;
    case torch::kByte: d.dtype = io::DType::U8; break;
    case torch::kBool: d.dtype = io::DType::Bool; break;
    default: throw InvalidArgument("to_tensor_data: unsupported dtype for '" + name + "'");
  }
  d.bytes.resize(c.nbytes());
  std::memcpy(d.bytes.data(), c.data_ptr(), c.nbytes());
  return d;
}

void load_weights(torch::nn::Module& module, const io::Checkpoint& ck,
                  const io::TensorCheckOptions& options, const std::string& prefix) {
  const auto expected = expected_tensors(module, prefix);
  io::check_tensors(ck, expected, options);
  torch::NoGradGuard no_grad;
  auto assign = [&](const std::string& key, torch::Tensor& dst) {
    const io::TensorData* src = ck.find(prefix + key);
    if (!src) return;  // allowed by options.only_prefixes
    // One pass from the checkpoint's bytes into the parameter, converting the dtype on the way
    // (bf16 encoder weights) and moving to the parameter's device.
    dst.copy_(tensor_view(*src));
  };
  for (auto& p : module.named_parameters(true)) assign(p.key(), p.value());
  for (auto& b : module.named_buffers(true)) assign(b.key(), b.value());
}

Sam build_sam(const io::Checkpoint& ck, const std::string& model_type, torch::ScalarType encoder_dtype) {
  return with_checkpoint_errors(ck.source, [&] {
    models::SamConfig cfg;
    if (model_type == "auto") {
      cfg = infer_sam_config(ck);
    } else {
      cfg = models::sam_preset(model_type);
      // Refuses other model families clearly, and tells SAM from HQ-SAM.
      const models::SamConfig inferred = infer_sam_config(ck, cfg.decoder.num_heads);
      SEMAT_CHECK(inferred.hq == cfg.hq, CheckpointError,
                  "'" << ck.source << "' is " << (inferred.hq ? "an HQ-SAM" : "a plain SAM")
                      << " checkpoint, not " << model_type << ": use --model-type auto or "
                      << (inferred.name == "custom" ? (inferred.hq ? "an hq_* type" : "a SAM type")
                                                    : inferred.name));
    }
    Timer t;
    Sam model{nullptr};
    {
      // The strict load below overwrites every parameter (check_tensors refuses a checkpoint that
      // lacks one), so the encoder's and decoders' linear layers skip their random initialisation.
      SkipLinearInit skip;
      model = Sam(cfg);
    }
    const double construct_s = t.seconds();
    t.reset();
    // Every encoder parameter is overwritten by the strict load below: no float32 copy first.
    if (encoder_dtype != torch::kFloat) model->image_encoder->set_compute_dtype(encoder_dtype, /*convert=*/false);
    load_weights(*model, ck);
    model->eval();
    SEMAT_LOG_DEBUG("sam", cfg.name << ": modules built in " << construct_s << " s, weights copied in " << t.seconds() << " s");
    return model;
  });
}

}  // namespace semat::models::sam
