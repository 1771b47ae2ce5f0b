// SAM 2's mask decoder (sam2/modeling/sam/mask_decoder.py MaskDecoder and transformer.py
// TwoWayTransformer): SAM's design plus an object-score token before the IoU token, high-res
// skips (conv_s0 / conv_s1) into the upscaling, an IoU head through a sigmoid and the dynamic
// multimask fallback. The two-way transformer is SAM's (sam::TwoWayTransformer) with SAM 2's MLP
// keys in its blocks (mlp.layers.{0,1}, ReLU: sam::BlockMlp::kSam2).
#pragma once

#include <utility>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include "semat/models/internal/sam/common.h"
#include "semat/models/internal/sam/transformer.h"
#include "semat/models/sam2_config.h"

namespace semat::models::sam2 {

/// Everything predict_masks computes, for all mask tokens.
struct Sam2DecoderOutput {
  torch::Tensor masks;          ///< [B, num_mask_tokens, 4g, 4g] logits of every mask token
  torch::Tensor iou_pred;       ///< [B, num_mask_tokens] (through a sigmoid when configured)
  torch::Tensor mask_tokens_out;  ///< [B, num_mask_tokens, E]
  torch::Tensor object_score_logits;  ///< [B, 1]
  torch::Tensor hs;             ///< [B, T, E] all output tokens of the transformer
  torch::Tensor image_tokens;   ///< [B, E, g, g] the image tokens after the transformer (the
                                ///< input of output_upscaling; SEMat's matting upscaling reads it)
  torch::Tensor upscaled;       ///< [B, E / 8, 4g, 4g] the upscaled image tokens
};

class MaskDecoderImpl : public torch::nn::Module {
 public:
  explicit MaskDecoderImpl(const models::Sam2MaskDecoderConfig& cfg);

  /// ref: MaskDecoder.predict_masks. image_embeddings [1 or B, E, g, g] (repeated over the
  /// prompts when 1), image_pe [1, E, g, g], sparse [B, N, E], dense [B, E, g, g],
  /// high_res_features {feat_s0 [1|B, E/8, 4g, 4g], feat_s1 [1|B, E/4, 2g, 2g]} (the conv_s0 /
  /// conv_s1 outputs; required when cfg.use_high_res_features). `extra_tokens` [T, E] (optional)
  /// go after the mask tokens, before the sparse prompt (SEMat's matting tokens).
  Sam2DecoderOutput predict_masks(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                                  const torch::Tensor& sparse, const torch::Tensor& dense,
                                  const std::vector<torch::Tensor>& high_res_features,
                                  const torch::Tensor& extra_tokens = {});
  /// output_upscaling of image tokens [B, E, g, g] with the high-res skips:
  /// GELU(ConvT2(GELU(LN(ConvT1(x) + feat_s1))) + feat_s0) -> [B, E/8, 4g, 4g].
  torch::Tensor upscale(const torch::Tensor& x, const std::vector<torch::Tensor>& high_res_features);
  /// The same with another module of output_upscaling's layout (SEMat's matting_output_upscaling).
  torch::Tensor upscale(const torch::Tensor& x, const std::vector<torch::Tensor>& high_res_features,
                        const torch::nn::Sequential& layers);
  /// ref: MaskDecoder.forward (masks and IoU): multimask -> tokens 1..; else token 0, or with
  /// dynamic_multimask_via_stability (and not training) the best of tokens 1.. by IoU where
  /// token 0's stability score is below the threshold. Returns ([B, M, 4g, 4g], [B, M]).
  std::pair<torch::Tensor, torch::Tensor> select_masks(const Sam2DecoderOutput& out, bool multimask_output) const;
  /// area(logits > delta) / area(logits > -delta) per mask over the last two dims (1 when empty).
  torch::Tensor stability_scores(const torch::Tensor& mask_logits) const;

  models::Sam2MaskDecoderConfig cfg;
  int64_t num_mask_tokens;
  sam::TwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr}, mask_tokens{nullptr}, obj_score_token{nullptr};
  torch::nn::Sequential output_upscaling{nullptr};
  torch::nn::Conv2d conv_s0{nullptr}, conv_s1{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps;
  sam::MLP iou_prediction_head{nullptr};
  sam::MLP pred_obj_score_head{nullptr};
};
TORCH_MODULE(MaskDecoder);

}  // namespace semat::models::sam2
