#include "semat/models/internal/semat_net/semat_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "semat/core/error.h"
#include "semat/models/internal/semat_net/lora.h"

namespace semat::models::semat_net {
namespace F = torch::nn::functional;
namespace {

torch::Tensor upsample(const torch::Tensor& x, int64_t size) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{size, size})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// SAM2ImagePredictor.predict_batch_boxes_and_features: the box [B, 4] as two points labelled 2
// and 3 (the prompt encoder pads a not-a-point token), in float64 as the official box tensor until
// the Fourier features: sparse [B, 3, D].
sam::PromptEmbeddings box_as_points(sam::PromptEncoderImpl& pe, const torch::Tensor& boxes) {
  const int64_t B = boxes.size(0);
  const auto labels = torch::tensor({2, 3}, torch::TensorOptions(torch::kLong).device(boxes.device()))
                          .view({1, 2})
                          .expand({B, 2});
  return pe.forward(boxes.to(torch::kDouble).reshape({B, 2, 2}), labels, {}, {});
}

enum class Part { kPromptEnhancement, kLora, kAdapter, kMattingDecoder, kFrozenHQ, kFrozen };

Part classify(const std::string& key) {
  if (key.find(".lora_A.") != std::string::npos || key.find(".lora_B.") != std::string::npos)
    return Part::kLora;
  // SAM / HQ: the 4-channel patch embedding; SAM2: the trunk's bbox_mask_patch_embed base conv.
  if (starts_with(key, "condition_layer.") || key.find(".bbox_mask_patch_embed.") != std::string::npos)
    return Part::kPromptEnhancement;
  if (starts_with(key, "sam_model.mask_decoder.matting_") ||
      starts_with(key, "sam_model.sam_mask_decoder.matting_"))
    return Part::kAdapter;
  if (starts_with(key, "matting_decoder.")) return Part::kMattingDecoder;
  for (const char* hq : {"hf_token.", "hf_mlp.", "compress_vit_feat.", "embedding_encoder.",
                         "embedding_maskfeature."})
    if (starts_with(key, std::string("sam_model.mask_decoder.") + hq)) return Part::kFrozenHQ;
  return Part::kFrozen;
}

}  // namespace

PeftEncoderImpl::PeftEncoderImpl(std::shared_ptr<torch::nn::Module> encoder)
    : model(std::move(encoder)) {
  auto base_model = std::make_shared<torch::nn::Module>("LoraModel");
  base_model->register_module("model", model);
  register_module("base_model", base_model);
}

SematSamImpl::SematSamImpl(const models::SematConfig& c, bool with_frozen_decoder) {
  vit = sam::ImageEncoderViT(c.sam.encoder);
  apply_lora(*vit, c.lora_rank, c.lora_alpha);
  image_encoder = register_module("image_encoder", PeftEncoder(vit.ptr()));
  prompt_encoder = register_module(
      "prompt_encoder", sam::PromptEncoder(c.sam.prompt.embed_dim, c.sam.encoder.grid(),
                                           c.sam.encoder.img_size, c.sam.prompt.mask_in_chans));
  mask_decoder = register_module(
      "mask_decoder",
      MaskDecoderHQMatting(c.sam.decoder, c.sam.encoder.embed_dim, c.matting_tokens, c.sam.hq));
  if (with_frozen_decoder)
    frozen_mask_decoder = register_module(
        "frozen_mask_decoder", sam::MaskDecoderHQ(c.sam.decoder, c.sam.encoder.embed_dim, c.sam.hq));
}

SematSam2Impl::SematSam2Impl(const models::SematConfig& c) {
  const int64_t d = c.sam2_base.decoder.transformer_dim;
  encoder = sam2::ImageEncoder(c.sam2_base.trunk, c.sam2_base.neck);
  apply_lora(*encoder, c.lora_rank, c.lora_alpha);
  image_encoder = register_module("image_encoder", PeftEncoder(encoder.ptr()));
  sam_prompt_encoder = register_module(
      "sam_prompt_encoder", sam::PromptEncoder(c.sam.prompt.embed_dim, c.sam.encoder.grid(),
                                               c.sam.encoder.img_size, c.sam.prompt.mask_in_chans));
  sam_mask_decoder =
      register_module("sam_mask_decoder", MaskDecoderMattingToken(c.sam2_base.decoder, c.matting_tokens));
  no_mem_embed = register_parameter("no_mem_embed", torch::zeros({1, 1, d}));
}

SematModelImpl::SematModelImpl(const models::SematConfig& c, bool with_frozen_decoder) : cfg(c) {
  // ImageNet statistics in [0, 1] units, stored as float32 like the official float buffers.
  pixel_mean = torch::tensor({123.675 / 255.0, 116.28 / 255.0, 103.53 / 255.0}, torch::kFloat)
                   .view({3, 1, 1});
  pixel_std =
      torch::tensor({58.395 / 255.0, 57.12 / 255.0, 57.375 / 255.0}, torch::kFloat).view({3, 1, 1});
  if (c.sam2) {
    SEMAT_CHECK(c.matting_decoder.sam2_multi_scale &&
                    c.matting_decoder.sam2_dim == c.sam2_base.decoder.transformer_dim,
                ConfigError,
                "SEMat config '" << c.name
                                 << "': the SAM2 variant needs the matting decoder built for SAM 2 "
                                    "features of the decoder's width");
    sam2_model = register_module("sam_model", SematSam2(c));
    matting_decoder = register_module("matting_decoder", MattingDetailDecoder(c.matting_decoder));
    set_trainable();
    return;
  }
  SEMAT_CHECK(c.matting_decoder.vit_feat_index.size() <= c.sam.encoder.global_attn_indexes.size(),
              ConfigError,
              "SEMat config '" << c.name << "': the matting decoder fuses "
                               << c.matting_decoder.vit_feat_index.size()
                               << " ViT features but the encoder has only "
                               << c.sam.encoder.global_attn_indexes.size() << " global blocks");
  sam_model = register_module("sam_model", SematSam(c, with_frozen_decoder));
  matting_decoder = register_module("matting_decoder", MattingDetailDecoder(c.matting_decoder));
  cond_patch_embed = sam::PatchEmbed(c.sam.encoder.patch_size, 4, c.sam.encoder.embed_dim);
  condition_layer = torch::nn::ModuleDict();
  condition_layer->update({{"patch_embed", cond_patch_embed.ptr()}});
  register_module("condition_layer", condition_layer);
  set_trainable();
}

torch::Tensor SematModelImpl::normalize(const torch::Tensor& rgb01) const {
  const auto dev = rgb01.device();
  return (rgb01 - pixel_mean.to(dev)) / pixel_std.to(dev);
}

torch::Tensor SematModelImpl::box_mask(const torch::Tensor& boxes) const {
  const int64_t S = cfg.sam.encoder.img_size, B = boxes.size(0);
  const auto dtype = boxes.is_floating_point() ? boxes.scalar_type() : torch::kFloat;
  auto mask = torch::zeros({B, 1, S, S}, torch::TensorOptions().dtype(dtype).device(boxes.device()));
  const auto b = boxes.to(torch::kCPU, torch::kDouble).contiguous();
  const double* v = b.data_ptr<double>();
  using torch::indexing::Slice;
  for (int64_t i = 0; i < B; ++i) {
    auto clip = [S](double x) {
      return std::clamp<int64_t>(static_cast<int64_t>(std::trunc(x)), 0, S);
    };
    const int64_t l = clip(v[4 * i]), u = clip(v[4 * i + 1]), r = clip(v[4 * i + 2]),
                  d = clip(v[4 * i + 3]);
    if (r > l && d > u) mask.index_put_({i, 0, Slice(u, d), Slice(l, r)}, 1.0);
  }
  return mask;
}

// ref: semantic_enhanced_matting/modeling/image_encoder.py ImageEncoderViT.forward (bbox mode)
SematFeatures SematModelImpl::encode(const torch::Tensor& images, const torch::Tensor& boxes,
                                     const torch::Tensor& patch_embed, SematTrace* trace) {
  if (cfg.sam2) return encode_sam2(images, boxes, patch_embed, trace);
  const auto mask = box_mask(boxes);
  const auto cond =
      cond_patch_embed->forward(torch::cat({images, mask.to(images.scalar_type())}, 1));
  auto& vit = *sam_model->vit;
  auto x = patch_embed.defined() ? patch_embed : vit.patch_embed->forward(images);
  if (x.size(0) != cond.size(0)) x = x.expand({cond.size(0), -1, -1, -1});
  if (trace) trace->box_mask = mask, trace->patch_embed = x, trace->cond_embed = cond;
  SematFeatures out;
  static_cast<sam::EncoderOutput&>(out) = vit.forward_tokens(x + cond, checkpoint_blocks);
  return out;
}

torch::Tensor SematModelImpl::patch_embed(const torch::Tensor& images) {
  if (cfg.sam2) return sam2_model->encoder->trunk->patch_embed->forward(images);
  return sam_model->vit->patch_embed->forward(images);
}

// ref: SEMat's sam2/modeling/backbones/hieradet.py HieraBBoxMask.forward, SAM2Base.forward_image
// and _prepare_backbone_features (directly_add_no_mem_embed)
SematFeatures SematModelImpl::encode_sam2(const torch::Tensor& images, const torch::Tensor& boxes,
                                          const torch::Tensor& patch_embed, SematTrace* trace) {
  const auto mask = box_mask(boxes);
  auto& enc = *sam2_model->encoder;
  auto& trunk = *enc.trunk;
  const auto cond =
      trunk.bbox_mask_patch_embed->forward(torch::cat({images, mask.to(images.scalar_type())}, 1));
  auto x = patch_embed.defined() ? patch_embed : trunk.patch_embed->forward(images);
  if (x.size(0) != cond.size(0)) x = x.expand({cond.size(0), -1, -1, -1});
  if (trace) trace->box_mask = mask, trace->patch_embed = x, trace->cond_embed = cond;
  return sam2_features(x + cond, trace);
}

SematFeatures SematModelImpl::sam2_features(const torch::Tensor& tokens, SematTrace* trace) {
  auto& enc = *sam2_model->encoder;
  const auto out = enc.forward_trunk_outputs(enc.trunk->forward_tokens(tokens));
  const auto& fpn = out.backbone_fpn;  // levels 0..2, finest first (level 3 scalped)
  if (trace) trace->fpn = fpn;
  SematFeatures f;
  std::tie(f.high_res0, f.high_res1) = sam2_model->sam_mask_decoder->high_res_features(fpn.at(0), fpn.at(1));
  f.embedding = fpn.at(2) + sam2_model->no_mem_embed.view({1, -1, 1, 1});
  return f;
}

// ref: sam_hq_matting.py forward_samhq_others + forward_samhq_and_matting_decoder
SematOutput SematModelImpl::decode(const torch::Tensor& images, const torch::Tensor& boxes,
                                   const SematFeatures& enc, SematTrace* trace) {
  const int64_t S = cfg.sam.encoder.img_size;
  if (cfg.sam2) return decode_sam2(images, boxes, enc, trace);
  auto& pe = *sam_model->prompt_encoder;
  const auto prompts = pe.forward({}, {}, boxes.is_floating_point() ? boxes : boxes.to(torch::kFloat), {});
  const auto image_pe = pe.get_dense_pe();
  if (trace) trace->sparse = prompts.sparse, trace->image_pe = image_pe;
  const auto dec = sam_model->mask_decoder->forward_matting(enc.embedding, image_pe, prompts.sparse,
                                                            prompts.dense, enc.global_blocks.at(0));
  if (trace) trace->mask_decoder = dec;
  SematOutput out;
  out.image_embeddings = enc.embedding;
  out.interm = enc.global_blocks;
  out.iou_pred = dec.iou_pred;
  out.sam_logits_lowres = dec.masks_sam;
  out.matting_logits_lowres = dec.masks_matting;
  out.sam_logits = upsample(dec.masks_sam, S);
  out.matting_logits = upsample(dec.masks_matting, S);
  if (dec.masks_hq.defined()) {
    out.hq_logits_lowres = dec.masks_hq;
    out.hq_logits = upsample(dec.masks_hq, S);
  }
  out.alpha_logits = matting_decoder->forward(images, out.matting_logits, enc.global_blocks,
                                              trace ? &trace->matting_decoder : nullptr);
  out.alpha = torch::sigmoid(out.alpha_logits);
  return out;
}

// ref: sam_hq_matting.py forward_samhq_and_matting_decoder (sam2) +
// SAM2ImagePredictor.predict_batch_boxes_and_features
SematOutput SematModelImpl::decode_sam2(const torch::Tensor& images, const torch::Tensor& boxes,
                                        const SematFeatures& enc, SematTrace* trace) {
  const int64_t S = cfg.sam.encoder.img_size;
  auto& pe = *sam2_model->sam_prompt_encoder;
  const auto prompts = box_as_points(pe, boxes);
  const auto sparse = prompts.sparse.to(enc.embedding.scalar_type());
  const auto image_pe = pe.get_dense_pe();
  if (trace) trace->sparse = sparse, trace->image_pe = image_pe;
  const auto dec = sam2_model->sam_mask_decoder->forward_matting(enc.embedding, image_pe, sparse,
                                                         prompts.dense, enc.high_res0, enc.high_res1);
  if (trace) trace->sam2_mask_decoder = dec;
  SematOutput out;
  out.image_embeddings = enc.embedding;
  out.sam_logits_lowres = dec.masks_sam;
  out.matting_logits_lowres = dec.masks_matting;
  out.sam_logits = upsample(dec.masks_sam, S);
  out.matting_logits = upsample(dec.masks_matting, S);
  out.alpha_logits =
      matting_decoder->forward_sam2(images, out.matting_logits, enc.embedding, enc.high_res0,
                                    enc.high_res1, trace ? &trace->matting_decoder : nullptr);
  out.alpha = torch::sigmoid(out.alpha_logits);
  return out;
}

SematOutput SematModelImpl::forward(const torch::Tensor& images, const torch::Tensor& boxes,
                                    SematTrace* trace) {
  SEMAT_CHECK(
      images.dim() == 4 && images.size(1) == 3 && images.size(2) == cfg.sam.encoder.img_size &&
          images.size(3) == cfg.sam.encoder.img_size,
      InvalidArgument,
      "SEMat expects images [B, 3, " << cfg.sam.encoder.img_size << ", " << cfg.sam.encoder.img_size
                                     << "], got " << images.sizes());
  SEMAT_CHECK(boxes.dim() == 2 && boxes.size(1) == 4 && boxes.size(0) == images.size(0),
              InvalidArgument, "SEMat expects one box [B, 4] per image, got " << boxes.sizes());
  return decode(images, boxes, encode(images, boxes, {}, trace), trace);
}

// ref: sam_hq_matting.py get_frozen_sam_logits (mask_type 'sam', multimask best by IoU)
torch::Tensor SematModelImpl::frozen_sam_logits(const torch::Tensor& images,
                                                const torch::Tensor& boxes) {
  if (cfg.sam2) {
    // SEMat (SAM2) has no frozen decoder copy: the target is the same (frozen) SAM 2 decoder
    // without the matting tokens, token 0, on the LoRA encoder without the box condition
    // (get_frozen_sam_logits with wo_matting_token=True).
    const auto f = sam2_features(patch_embed(images));
    auto& pe = *sam2_model->sam_prompt_encoder;
    const auto prompts = box_as_points(pe, boxes);
    const auto dec = sam2_model->sam_mask_decoder->forward_matting(
        f.embedding, pe.get_dense_pe(), prompts.sparse.to(f.embedding.scalar_type()), prompts.dense,
        f.high_res0, f.high_res1, /*with_matting_tokens=*/false);
    return upsample(dec.masks_sam, cfg.sam.encoder.img_size);
  }
  SEMAT_CHECK(!sam_model->frozen_mask_decoder.is_empty(), StateError,
              "frozen_sam_logits: build the model from a SAM checkpoint for training "
              "(with_frozen_decoder) to get the frozen SAM decoder");
  const auto enc = sam_model->vit->forward_features(images);
  const auto& emb = enc.embedding;
  auto& pe = *sam_model->prompt_encoder;
  const auto prompts = pe.forward({}, {}, boxes.is_floating_point() ? boxes : boxes.to(torch::kFloat), {});
  if (cfg.sam.hq) {
    const auto hq = sam_model->frozen_mask_decoder->forward_hq(
        emb, pe.get_dense_pe(), prompts.sparse, prompts.dense, enc.global_blocks.at(0),
        /*multimask_output=*/true, /*hq_token_only=*/true);
    return upsample(hq.masks, cfg.sam.encoder.img_size);
  }
  const auto dec = sam_model->frozen_mask_decoder->forward(
      emb, pe.get_dense_pe(), prompts.sparse, prompts.dense, /*multimask_output=*/true);
  const auto best = dec.iou_pred.argmax(1);
  const auto logits =
      dec.masks.index({torch::arange(dec.masks.size(0), best.options()), best}).unsqueeze(1);
  return upsample(logits, cfg.sam.encoder.img_size);
}

void SematModelImpl::set_trainable() {
  for (auto& p : named_parameters(true)) {
    const Part part = classify(p.key());
    const bool frozen = part == Part::kFrozen || part == Part::kFrozenHQ;
    p.value().set_requires_grad(!frozen);
  }
}

models::SematParameterCounts SematModelImpl::parameter_counts() const {
  models::SematParameterCounts c;
  for (const auto& p : named_parameters(true)) {
    const int64_t n = p.value().numel();
    switch (classify(p.key())) {
      case Part::kPromptEnhancement:
        c.prompt_enhancement += n;
        break;
      case Part::kLora:
        c.lora += n;
        break;
      case Part::kAdapter:
        c.matting_tokens_adapter += n;
        break;
      case Part::kMattingDecoder:
        c.matting_decoder += n;
        break;
      case Part::kFrozenHQ:
        c.frozen_hq += n;
        break;
      case Part::kFrozen:
        if (!starts_with(p.key(), "sam_model.frozen_mask_decoder.")) c.frozen_sam += n;
        break;
    }
  }
  c.total = c.prompt_enhancement + c.lora + c.matting_tokens_adapter + c.matting_decoder;
  return c;
}

}  // namespace semat::models::semat_net
