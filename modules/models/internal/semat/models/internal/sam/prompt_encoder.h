// SAM's prompt encoder (segment_anything/modeling/prompt_encoder.py): points, boxes and mask
// prompts to sparse and dense embeddings.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>

#include "semat/models/internal/sam/common.h"
#include "semat/models/sam_config.h"

namespace semat::models::sam {

/// Random-Fourier positional encoding; buffer positional_encoding_gaussian_matrix [2, F].
class PositionEmbeddingRandomImpl : public torch::nn::Module {
 public:
  explicit PositionEmbeddingRandomImpl(int64_t num_pos_feats);
  /// Dense encoding of an (h, w) grid of pixel centres: [2F, h, w].
  torch::Tensor forward(int64_t h, int64_t w);
  /// `coords`: [..., 2] in pixels (x, y) of an image of `image_hw`; returns [..., 2F].
  torch::Tensor forward_with_coords(const torch::Tensor& coords, int64_t image_h, int64_t image_w);
  torch::Tensor pe_encoding(torch::Tensor coords);

  torch::Tensor positional_encoding_gaussian_matrix;
};
TORCH_MODULE(PositionEmbeddingRandom);

struct PromptEmbeddings {
  torch::Tensor sparse;  ///< [B, N, E]
  torch::Tensor dense;   ///< [B, E, grid, grid]
};

class PromptEncoderImpl : public torch::nn::Module {
 public:
  PromptEncoderImpl(int64_t embed_dim, int64_t grid, int64_t input_image_size, int64_t mask_in_chans);

  /// `points`: [B, N, 2] pixels of the model input frame with `labels` [B, N] (1 foreground,
  /// 0 background, -1 padding, 2 / 3 box corners as SAM 2 labels them); `boxes`: [B, 4] XYXY;
  /// `masks`: [B, 1, 4 grid, 4 grid] logits.
  /// Any may be undefined; the batch size comes from the first defined one.
  PromptEmbeddings forward(const torch::Tensor& points, const torch::Tensor& labels,
                           const torch::Tensor& boxes, const torch::Tensor& masks);
  /// [1, E, grid, grid].
  torch::Tensor get_dense_pe();

  PositionEmbeddingRandom pe_layer{nullptr};
  torch::nn::ModuleList point_embeddings;
  torch::nn::Embedding not_a_point_embed{nullptr}, no_mask_embed{nullptr};
  torch::nn::Sequential mask_downscaling{nullptr};
  int64_t embed_dim, grid, input_image_size;
};
TORCH_MODULE(PromptEncoder);

}  // namespace semat::models::sam
