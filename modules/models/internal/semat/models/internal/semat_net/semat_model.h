// SEMat as one module (modeling/meta_arch/sam_hq_matting.py SamHqMatte in the SEMat_SAM and
// SEMat_HQ-SAM configurations). Submodules and parameter names follow the official state_dict:
//   sam_model.image_encoder.base_model.model.*   SAM ViT with peft LoRA (qkv, proj, patch_embed)
//   sam_model.prompt_encoder.*                   SAM prompt encoder
//   sam_model.mask_decoder.*                     SAM mask decoder (+ HQ-SAM's HQ token and fusion
//                                                layers for SEMat_HQ-SAM) + matting tokens, adapter
//   sam_model.frozen_mask_decoder.*              only when built for training from SAM weights
//   matting_decoder.*                            MattingDetailDecoder
//   condition_layer.patch_embed.proj.*           prompt enhancement (4-channel patch embed)
// Namespace semat::models::semat_net holds the SEMat network's LibTorch modules (this folder);
// semat::models::sam the SAM ones it builds on. Both are internal: users go through
// semat/models/semat_predictor.h and sam_predictor.h.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/moduledict.h>

#include "semat/models/internal/sam/image_encoder.h"
#include "semat/models/internal/sam/mask_decoder.h"
#include "semat/models/internal/sam/prompt_encoder.h"
#include "semat/models/internal/sam2/image_encoder.h"
#include "semat/models/internal/semat_net/mask_decoder_matting.h"
#include "semat/models/internal/semat_net/mask_decoder_matting_token.h"
#include "semat/models/internal/semat_net/matting_decoder.h"
#include "semat/models/semat_config.h"

namespace semat::models::semat_net {

/// peft's wrapping of the image encoder: image_encoder.base_model.model = the SAM ViT or the
/// SAM 2 image encoder (trunk + neck).
class PeftEncoderImpl : public torch::nn::Module {
 public:
  explicit PeftEncoderImpl(std::shared_ptr<torch::nn::Module> encoder);
  std::shared_ptr<torch::nn::Module> model;
};
TORCH_MODULE(PeftEncoder);

class SematSamImpl : public torch::nn::Module {
 public:
  SematSamImpl(const models::SematConfig& cfg, bool with_frozen_decoder);
  PeftEncoder image_encoder{nullptr};
  sam::ImageEncoderViT vit{nullptr};  ///< = image_encoder->model
  sam::PromptEncoder prompt_encoder{nullptr};
  MaskDecoderHQMatting mask_decoder{nullptr};
  /// Training only: the original SAM decoder (HQ-SAM's, with its HQ parts, for the HQ variant).
  sam::MaskDecoderHQ frozen_mask_decoder{nullptr};
};
TORCH_MODULE(SematSam);

/// SEMat (SAM2)'s sam_model: the image-path modules of SAM2Base under their Python names
/// (image_encoder.base_model.model.{trunk,neck} with peft LoRA, sam_prompt_encoder,
/// sam_mask_decoder with the matting tokens, no_mem_embed). The video modules of the official
/// checkpoint (memory attention / encoder, ...) are not built.
class SematSam2Impl : public torch::nn::Module {
 public:
  explicit SematSam2Impl(const models::SematConfig& cfg);
  PeftEncoder image_encoder{nullptr};
  sam2::ImageEncoder encoder{nullptr};  ///< = image_encoder->model (HieraBBoxMask trunk + neck)
  sam::PromptEncoder sam_prompt_encoder{nullptr};
  MaskDecoderMattingToken sam_mask_decoder{nullptr};
  torch::Tensor no_mem_embed;  ///< [1, 1, D], added to the coarsest kept FPN level
};
TORCH_MODULE(SematSam2);

/// The encoder's output the decoders take. SAM / HQ variants: embedding and global_blocks.
/// SAM2 variant: embedding = image_embed (FPN level 2 + no_mem_embed) [B, D, g, g] and the
/// high-res features conv_s0 / conv_s1 of FPN levels 0 and 1 [B, D/8, 4g, 4g], [B, D/4, 2g, 2g];
/// global_blocks is empty.
struct SematFeatures : sam::EncoderOutput {
  torch::Tensor high_res0, high_res1;
};

/// Intermediates of one forward pass (tests and debugging).
struct SematTrace {
  torch::Tensor box_mask;     ///< [B, 1, S, S] rasterised box
  torch::Tensor patch_embed;  ///< [B, g, g, D] LoRA patch embedding of the image
  torch::Tensor cond_embed;   ///< [B, g, g, D] prompt-enhancement patch embedding
  torch::Tensor sparse;       ///< [B, 2, E] box tokens (SAM2: [B, 3, D], 2 corners + padding)
  std::vector<torch::Tensor> fpn;  ///< SAM2: neck levels 0..2 [B, D, h, w] (before conv_s0/s1)
  torch::Tensor image_pe;     ///< [1, E, g, g]
  MattingDecoderOutput mask_decoder;  ///< everything the mask decoder returned (SAM / HQ)
  Sam2MattingDecoderOutput sam2_mask_decoder;  ///< the same, SAM2 variant
  MattingDecoderTrace matting_decoder;
};

/// Everything a forward pass produces; training losses use alpha_logits / alpha (matting
/// losses), matting_logits (trimap loss on the matting tokens), sam_logits (regularisation
/// against the frozen SAM) and iou_pred.
struct SematOutput {
  torch::Tensor image_embeddings;       ///< [B, E, g, g] neck output
  std::vector<torch::Tensor> interm;    ///< global-block outputs, [B, g, g, D] each
  torch::Tensor iou_pred;               ///< [B, 4]
  torch::Tensor sam_logits_lowres;      ///< [B, 1, 4g, 4g] best multimask logits
  torch::Tensor matting_logits_lowres;  ///< [B, 3, 4g, 4g] (bg, unknown, fg)
  torch::Tensor sam_logits;             ///< [B, 1, S, S] bilinear upsampling of the above
  torch::Tensor matting_logits;         ///< [B, 3, S, S]
  /// HQ variant only: the HQ token's logits [B, 1, 4g, 4g] and upsampled [B, 1, S, S]
  /// (SamHqMatte's masks_hq, the frozen-model regulariser's subject); undefined otherwise.
  torch::Tensor hq_logits_lowres, hq_logits;
  torch::Tensor alpha_logits;           ///< [B, 1, S, S]
  torch::Tensor alpha;                  ///< [B, 1, S, S] sigmoid(alpha_logits), in (0, 1)
};

class SematModelImpl : public torch::nn::Module {
 public:
  explicit SematModelImpl(const models::SematConfig& cfg, bool with_frozen_decoder = false);

  /// [B, 3, S, S] RGB in [0, 1] (zero-padded) -> normalised with ImageNet statistics. The
  /// padding is normalised too, as in the official code (unlike SAM, which pads afterwards).
  torch::Tensor normalize(const torch::Tensor& rgb01) const;
  /// boxes [B, 4] x1, y1, x2, y2 in the S x S frame -> [B, 1, S, S] with rows [int(y1), int(y2))
  /// and columns [int(x1), int(x2)) set to 1 (the official half-open, truncating raster).
  torch::Tensor box_mask(const torch::Tensor& boxes) const;

  /// Image encoder with prompt enhancement. images [B, 3, S, S] normalised, boxes [B, 4].
  /// `patch_embed` [1 or B, g, g, D]: the box-independent LoRA patch embedding when already
  /// computed (several boxes on one image).
  SematFeatures encode(const torch::Tensor& images, const torch::Tensor& boxes,
                       const torch::Tensor& patch_embed = {}, SematTrace* trace = nullptr);
  /// The box-independent part of encode(): the (LoRA) patch embedding of the image,
  /// [B, g, g, D] (SAM2: [B, S/4, S/4, E]).
  torch::Tensor patch_embed(const torch::Tensor& images);
  /// SAM2 variant: trunk blocks, neck, conv_s0 / conv_s1 and no_mem_embed on the tokens
  /// entering the trunk's blocks [B, S/4, S/4, E] (before the position embedding).
  SematFeatures sam2_features(const torch::Tensor& tokens, SematTrace* trace = nullptr);
  /// encode() of the SAM2 variant.
  SematFeatures encode_sam2(const torch::Tensor& images, const torch::Tensor& boxes,
                            const torch::Tensor& patch_embed, SematTrace* trace);
  /// Full network: one box per image (B images, boxes [B, 4] in the S x S frame).
  SematOutput forward(const torch::Tensor& images, const torch::Tensor& boxes,
                      SematTrace* trace = nullptr);
  /// Decoders only, from encode()'s output.
  SematOutput decode(const torch::Tensor& images, const torch::Tensor& boxes,
                     const SematFeatures& enc, SematTrace* trace = nullptr);
  /// decode() of the SAM2 variant.
  SematOutput decode_sam2(const torch::Tensor& images, const torch::Tensor& boxes,
                          const SematFeatures& enc, SematTrace* trace = nullptr);
  /// Training target of the SAM regulariser: the frozen SAM decoder's best multimask logits
  /// [B, 1, S, S] on the encoder's features without the box condition (get_frozen_sam_logits);
  /// for the HQ variant the frozen HQ-SAM decoder's HQ-token logits (mask_type 'hq').
  /// Needs a model built with the frozen decoder.
  torch::Tensor frozen_sam_logits(const torch::Tensor& images, const torch::Tensor& boxes);

  /// requires_grad on exactly the parameters SEMat trains (LoRA, prompt enhancement, matting
  /// tokens and adapter, matting decoder); the SAM weights are frozen.
  void set_trainable();
  models::SematParameterCounts parameter_counts() const;

  /// Training memory: with gradients on, keep only each ViT block's input and recompute the
  /// block during backward (activation checkpointing; gradients are unchanged, the encoder's
  /// forward runs twice). The global blocks' score maps are what fills memory at 1024: one ViT-B
  /// training sample peaks at 17.3 GB without it, 6.5 GB with it.
  bool checkpoint_blocks = false;

  models::SematConfig cfg;
  SematSam sam_model{nullptr};    ///< SAM / HQ variants ("sam_model")
  SematSam2 sam2_model{nullptr};  ///< SAM2 variant (registered as "sam_model" too)
  MattingDetailDecoder matting_decoder{nullptr};
  torch::nn::ModuleDict condition_layer{nullptr};
  sam::PatchEmbed cond_patch_embed{nullptr};  ///< = condition_layer["patch_embed"]
  torch::Tensor pixel_mean, pixel_std;        ///< [3, 1, 1] in [0, 1] units; not in checkpoints
};
TORCH_MODULE(SematModel);

}  // namespace semat::models::semat_net
