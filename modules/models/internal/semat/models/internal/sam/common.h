// Small building blocks shared by the SAM modules (segment_anything/modeling/common.py and the
// MLP of mask_decoder.py). Parameter names follow the Python attributes.
#pragma once

#include <functional>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace semat::models::sam {

/// Replaces a layer's forward while the layer stays registered (SEMat's LoRA wraps the encoder's
/// qkv/proj/patch convolutions this way, so the SAM code needs no LoRA knowledge).
using LayerHook = std::function<torch::Tensor(const torch::Tensor&)>;

/// LayerNorm over the channel axis of [B, C, H, W] (biased variance), as segment_anything's
/// LayerNorm2d. Parameters `weight`, `bias` of shape [C].
class LayerNorm2dImpl : public torch::nn::Module {
 public:
  explicit LayerNorm2dImpl(int64_t channels, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight, bias;
  double eps;
};
TORCH_MODULE(LayerNorm2d);

/// Exact (erf) GELU. With gradients on it goes through its own autograd node whose backward
/// makes the incoming gradient contiguous first: LibTorch 1.13's CPU gelu_backward returns
/// wrong, run-to-run different values when the gradient is strided differently from the input
/// (e.g. channels-last, as the backward of permute + reshape produces), which corrupted every
/// gradient upstream of SAM's mask decoder. Inference calls torch::gelu directly.
torch::Tensor gelu_act(const torch::Tensor& x);

/// gelu_act() as a module, for Sequential containers (no parameters, so no keys change).
class GELUImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(const torch::Tensor& x) { return gelu_act(x); }
};
TORCH_MODULE(GELU);

/// layer->forward(x) for x [..., in]; with bf16 weights (bf16 inference) over the 2-D [rows, in]
/// view, so the bias is added inside the GEMM (addmm) instead of in a second pass over the output
/// (LibTorch 1.13's linear folds > 3-D inputs into mm + add_). float32 always takes
/// layer->forward, so its results do not change.
torch::Tensor linear_rows(torch::nn::Linear& layer, const torch::Tensor& x);

/// layer->forward(x); with bf16 weights (bf16 inference) the statistics and the normalisation
/// run on a float32 copy and the result is rounded to bf16 once: LibTorch 1.13's bf16 layer_norm
/// kernel is about 10x slower than the float32 one plus both conversions on 4096 x 768 tokens.
torch::Tensor layer_norm_rows(torch::nn::LayerNorm& layer, const torch::Tensor& x);

/// bf16 inference on CPU: softmax over the last axis of `s` computed in place by the row kernel
/// (float32 arithmetic, one rounding to bf16; rows split over the threads). Returns false and
/// leaves `s` untouched where that does not apply (not a contiguous bf16 CPU tensor outside
/// autograd): the caller then takes LibTorch's softmax.
bool softmax_last_dim_in_place(const torch::Tensor& s);

/// While one lives, make_linear() on this thread leaves the new layers' weights and biases
/// uninitialised: for a loader that overwrites every parameter right after (sam::build_sam's
/// strict load). LibTorch's default initialisation draws one random number per weight, serially:
/// 0.6 s of ViT-B's start-up, all thrown away by the load.
class SkipLinearInit {
 public:
  SkipLinearInit();
  ~SkipLinearInit();
  SkipLinearInit(const SkipLinearInit&) = delete;
  SkipLinearInit& operator=(const SkipLinearInit&) = delete;

 private:
  bool previous_;
};

/// torch::nn::Linear(in, out) with LibTorch's initialisation, or with uninitialised parameters
/// of the same shapes while a SkipLinearInit lives.
torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias = true);

enum class Activation { kGelu, kRelu };
torch::Tensor activate(const torch::Tensor& x, Activation act);

/// lin1 (dim -> mlp_dim), activation, lin2 (mlp_dim -> dim).
class MLPBlockImpl : public torch::nn::Module {
 public:
  MLPBlockImpl(int64_t embedding_dim, int64_t mlp_dim, Activation act);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear lin1{nullptr}, lin2{nullptr};
  Activation act;
};
TORCH_MODULE(MLPBlock);

/// `num_layers` Linear layers (input -> hidden ... -> output) with ReLU between them; keys
/// layers.0 ... layers.{n-1}.
class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers,
          bool sigmoid_output = false);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ModuleList layers;
  bool sigmoid_output;
};
TORCH_MODULE(MLP);

}  // namespace semat::models::sam
