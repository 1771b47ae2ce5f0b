#include "semat/models/internal/sam/prompt_encoder.h"

#include <torch/torch.h>

#include <cmath>

namespace semat::models::sam {

PositionEmbeddingRandomImpl::PositionEmbeddingRandomImpl(int64_t num_pos_feats) {
  positional_encoding_gaussian_matrix =
      register_buffer("positional_encoding_gaussian_matrix", torch::randn({2, num_pos_feats}));
}

torch::Tensor PositionEmbeddingRandomImpl::pe_encoding(torch::Tensor coords) {
  coords = 2 * coords - 1;
  coords = torch::matmul(coords, positional_encoding_gaussian_matrix);
  coords = 2 * M_PI * coords;
  return torch::cat({torch::sin(coords), torch::cos(coords)}, -1);
}

torch::Tensor PositionEmbeddingRandomImpl::forward(int64_t h, int64_t w) {
  const auto opts = positional_encoding_gaussian_matrix.options();
  const auto grid = torch::ones({h, w}, opts);
  auto y = grid.cumsum(0) - 0.5;
  auto x = grid.cumsum(1) - 0.5;
  y = y / h;
  x = x / w;
  return pe_encoding(torch::stack({x, y}, -1)).permute({2, 0, 1});
}

torch::Tensor PositionEmbeddingRandomImpl::forward_with_coords(const torch::Tensor& coords_in,
                                                               int64_t image_h, int64_t image_w) {
  auto coords = coords_in.clone();
  coords.select(-1, 0).div_(image_w);
  coords.select(-1, 1).div_(image_h);
  return pe_encoding(coords.to(positional_encoding_gaussian_matrix.scalar_type()));
}

PromptEncoderImpl::PromptEncoderImpl(int64_t embed_dim_, int64_t grid_, int64_t input_size,
                                     int64_t mask_in_chans)
    : embed_dim(embed_dim_), grid(grid_), input_image_size(input_size) {
  pe_layer = register_module("pe_layer", PositionEmbeddingRandom(embed_dim / 2));
  for (int i = 0; i < 4; ++i) point_embeddings->push_back(torch::nn::Embedding(1, embed_dim));
  register_module("point_embeddings", point_embeddings);
  not_a_point_embed = register_module("not_a_point_embed", torch::nn::Embedding(1, embed_dim));
  using torch::nn::Conv2d;
  using torch::nn::Conv2dOptions;
  mask_downscaling = register_module(
      "mask_downscaling",
      torch::nn::Sequential(Conv2d(Conv2dOptions(1, mask_in_chans / 4, 2).stride(2)),
                            LayerNorm2d(mask_in_chans / 4), GELU(),
                            Conv2d(Conv2dOptions(mask_in_chans / 4, mask_in_chans, 2).stride(2)),
                            LayerNorm2d(mask_in_chans), GELU(),
                            Conv2d(Conv2dOptions(mask_in_chans, embed_dim, 1))));
  no_mask_embed = register_module("no_mask_embed", torch::nn::Embedding(1, embed_dim));
}

torch::Tensor PromptEncoderImpl::get_dense_pe() { return pe_layer->forward(grid, grid).unsqueeze(0); }

// ref: prompt_encoder.py PromptEncoder.forward, _embed_points, _embed_boxes
PromptEmbeddings PromptEncoderImpl::forward(const torch::Tensor& points_in,
                                            const torch::Tensor& labels_in,
                                            const torch::Tensor& boxes, const torch::Tensor& masks) {
  const int64_t bs = points_in.defined() ? points_in.size(0)
                     : boxes.defined()   ? boxes.size(0)
                     : masks.defined()   ? masks.size(0)
                                         : 1;
  const auto opts = pe_layer->positional_encoding_gaussian_matrix.options();
  const auto weight = [&](int i) {
    return point_embeddings[i]->as<torch::nn::Embedding>()->weight;
  };
  std::vector<torch::Tensor> sparse{torch::empty({bs, 0, embed_dim}, opts)};
  if (points_in.defined()) {
    auto points = points_in + 0.5;  // shift to pixel centres
    auto labels = labels_in;
    if (!boxes.defined()) {
      points = torch::cat({points, torch::zeros({bs, 1, 2}, points.options())}, 1);
      labels = torch::cat({labels, -torch::ones({bs, 1}, labels.options())}, 1);
    }
    auto pe = pe_layer->forward_with_coords(points, input_image_size, input_image_size);
    const auto l = labels.unsqueeze(-1);
    pe = torch::where(l == -1, torch::zeros_like(pe), pe);
    pe = pe + (l == -1).to(pe.dtype()) * not_a_point_embed->weight;
    pe = pe + (l == 0).to(pe.dtype()) * weight(0);
    pe = pe + (l == 1).to(pe.dtype()) * weight(1);
    // SAM 2 gives box corners as points with labels 2 and 3 (sam2 prompt_encoder.py
    // _embed_points); SAM's predictors only pass -1, 0 and 1, for which these add exact zeros.
    pe = pe + (l == 2).to(pe.dtype()) * weight(2);
    pe = pe + (l == 3).to(pe.dtype()) * weight(3);
    sparse.push_back(pe);
  }
  if (boxes.defined()) {
    const auto coords = (boxes + 0.5).reshape({-1, 2, 2});
    auto corners = pe_layer->forward_with_coords(coords, input_image_size, input_image_size);
    corners = torch::cat({corners.select(1, 0).unsqueeze(1) + weight(2),
                          corners.select(1, 1).unsqueeze(1) + weight(3)}, 1);
    sparse.push_back(corners);
  }
  PromptEmbeddings out;
  out.sparse = torch::cat(sparse, 1);
  out.dense = masks.defined()
                  ? mask_downscaling->forward(masks)
                  : no_mask_embed->weight.reshape({1, -1, 1, 1}).expand({bs, -1, grid, grid});
  return out;
}

}  // namespace semat::models::sam
