// SAM's mask decoder (segment_anything/modeling/mask_decoder.py).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>

#include "semat/models/internal/sam/common.h"
#include "semat/models/internal/sam/transformer.h"
#include "semat/models/sam_config.h"

namespace semat::models::sam {

/// The two-way transformer's outputs before the mask heads.
struct DecoderTokens {
  torch::Tensor hs;        ///< [B, 1 + num_mask_tokens + extra + N, E] output tokens
  torch::Tensor image_tokens;  ///< [B, E, grid, grid] image tokens after the transformer
  torch::Tensor upscaled;  ///< [B, E / 8, 4 grid, 4 grid] output_upscaling(image tokens), unless
                           ///< predict_tokens was asked not to compute it
};

struct DecoderOutput {
  torch::Tensor masks;     ///< [B, M, 4 grid, 4 grid] logits (M = 3 with multimask, else 1)
  torch::Tensor iou_pred;  ///< [B, M]
};

/// A 2x2, stride-2 ConvTranspose2d of [B, C, H, W] -> [B, O, 2H, 2W] as one GEMM and a pixel
/// shuffle (the outputs never overlap); the same numbers as conv->forward(x).
torch::Tensor conv_transpose_2x2(const torch::Tensor& x, const torch::nn::ConvTranspose2dImpl& conv);

class MaskDecoderImpl : public torch::nn::Module {
 public:
  explicit MaskDecoderImpl(const models::MaskDecoderConfig& cfg);
  /// image_embeddings [1 or B, E, g, g] (repeated over the prompts when 1), image_pe
  /// [1, E, g, g], sparse [B, N, E], dense [B, E, g, g].
  DecoderOutput forward(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                        const torch::Tensor& sparse, const torch::Tensor& dense,
                        bool multimask_output);

  /// The transformer on [iou_token, mask_tokens, extra_tokens, sparse] (extra_tokens [T, E] or
  /// undefined; SEMat's matting tokens) and the upscaled image tokens.
  DecoderTokens predict_tokens(const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
                               const torch::Tensor& sparse, const torch::Tensor& dense,
                               const torch::Tensor& extra_tokens = {},
                               bool upscale_tokens = true);
  /// [B, num_mask_tokens, 4g, 4g] logits of the SAM mask tokens (hs[:, 1 : 1 + num_mask_tokens]).
  torch::Tensor sam_masks(const DecoderTokens& t);
  /// output_upscaling applied to image tokens [B, E, g, g] -> [B, E / 8, 4g, 4g], with the
  /// transposed convolutions computed as GEMMs.
  torch::Tensor upscale(const torch::Tensor& x);
  /// hyper_in [B, M, E/8] @ upscale(x [B, E, g, g]) -> [B, M, 4g, 4g], computed per 2x2 tap.
  torch::Tensor masks_from_image_tokens(const torch::Tensor& hyper_in, const torch::Tensor& x);

  TwoWayTransformer transformer{nullptr};
  torch::nn::Embedding iou_token{nullptr}, mask_tokens{nullptr};
  torch::nn::Sequential output_upscaling{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps;
  MLP iou_prediction_head{nullptr};
  int64_t num_mask_tokens;
};
TORCH_MODULE(MaskDecoder);

}  // namespace semat::models::sam
