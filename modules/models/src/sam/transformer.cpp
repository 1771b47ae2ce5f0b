#include "semat/models/internal/sam/transformer.h"

#include <torch/torch.h>

#include <cmath>

namespace semat::models::sam {
namespace {

// Linear on [B, N, in] as one addmm on the [B N, in] view: the bias goes into the GEMM instead
// of a separate broadcast add over a fresh [B, N, out] tensor (4096 image tokens per call here).
torch::Tensor linear_tokens(const torch::Tensor& x, const torch::nn::Linear& lin) {
  const auto x2 = x.reshape({-1, x.size(-1)});
  return torch::addmm(lin->bias, x2, lin->weight.t()).view({x.size(0), x.size(1), -1});
}

}  // namespace

TokenAttentionImpl::TokenAttentionImpl(int64_t dim, int64_t heads, int64_t rate) : num_heads(heads) {
  const int64_t internal = dim / rate;
  q_proj = register_module("q_proj", torch::nn::Linear(dim, internal));
  k_proj = register_module("k_proj", torch::nn::Linear(dim, internal));
  v_proj = register_module("v_proj", torch::nn::Linear(dim, internal));
  out_proj = register_module("out_proj", torch::nn::Linear(internal, dim));
}

torch::Tensor TokenAttentionImpl::forward(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                          const torch::Tensor& v_in) {
  const auto split = [&](const torch::Tensor& x) {
    return x.reshape({x.size(0), x.size(1), num_heads, x.size(2) / num_heads}).transpose(1, 2);
  };
  const auto q = split(linear_tokens(q_in, q_proj));
  const auto k = split(linear_tokens(k_in, k_proj));
  const auto v = split(linear_tokens(v_in, v_proj));
  auto attn = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(3)));
  auto out = torch::matmul(torch::softmax(attn, -1), v);
  out = out.transpose(1, 2);
  return linear_tokens(out.reshape({out.size(0), out.size(1), -1}), out_proj);
}

TwoWayAttentionBlockImpl::TwoWayAttentionBlockImpl(int64_t dim, int64_t heads, int64_t mlp_dim,
                                                   bool skip, BlockMlp mlp_kind)
    : skip_first_layer_pe(skip) {
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})); };
  self_attn = register_module("self_attn", TokenAttention(dim, heads));
  norm1 = register_module("norm1", ln());
  cross_attn_token_to_image = register_module("cross_attn_token_to_image", TokenAttention(dim, heads, 2));
  norm2 = register_module("norm2", ln());
  if (mlp_kind == BlockMlp::kSam) {
    mlp = torch::nn::AnyModule(MLPBlock(dim, mlp_dim, Activation::kRelu));
  } else {
    mlp = torch::nn::AnyModule(MLP(dim, mlp_dim, dim, 2));
  }
  register_module("mlp", mlp.ptr());
  norm3 = register_module("norm3", ln());
  norm4 = register_module("norm4", ln());
  cross_attn_image_to_token = register_module("cross_attn_image_to_token", TokenAttention(dim, heads, 2));
}

// ref: transformer.py TwoWayAttentionBlock.forward
void TwoWayAttentionBlockImpl::forward(torch::Tensor& queries, torch::Tensor& keys,
                                       const torch::Tensor& query_pe, const torch::Tensor& key_pe) {
  if (skip_first_layer_pe) {
    queries = self_attn->forward(queries, queries, queries);
  } else {
    const auto q = queries + query_pe;
    queries = queries + self_attn->forward(q, q, queries);
  }
  queries = norm1->forward(queries);
  auto q = queries + query_pe;
  // keys do not change until norm4, so keys + key_pe serves both cross attentions.
  const auto k = keys + key_pe;
  queries = norm2->forward(queries + cross_attn_token_to_image->forward(q, k, keys));
  queries = norm3->forward(queries + mlp.forward(queries));
  q = queries + query_pe;
  keys = norm4->forward(keys + cross_attn_image_to_token->forward(k, q, queries));
}

TwoWayTransformerImpl::TwoWayTransformerImpl(int64_t depth, int64_t dim, int64_t heads,
                                             int64_t mlp_dim, BlockMlp mlp_kind) {
  for (int64_t i = 0; i < depth; ++i) {
    layers->push_back(TwoWayAttentionBlock(dim, heads, mlp_dim, i == 0, mlp_kind));
  }
  register_module("layers", layers);
  final_attn_token_to_image = register_module("final_attn_token_to_image", TokenAttention(dim, heads, 2));
  norm_final_attn = register_module("norm_final_attn", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayTransformerImpl::forward(const torch::Tensor& image,
                                                                       const torch::Tensor& image_pe,
                                                                       const torch::Tensor& tokens) {
  const auto key_pe = image_pe.flatten(2).permute({0, 2, 1});
  auto keys = image.flatten(2).permute({0, 2, 1});
  auto queries = tokens;
  for (const auto& layer : *layers) layer->as<TwoWayAttentionBlock>()->forward(queries, keys, tokens, key_pe);
  const auto q = queries + tokens;
  const auto k = keys + key_pe;
  queries = norm_final_attn->forward(queries + final_attn_token_to_image->forward(q, k, keys));
  return {queries, keys};
}

}  // namespace semat::models::sam
