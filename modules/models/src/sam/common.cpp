#include "semat/models/internal/sam/common.h"

#include <torch/torch.h>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "semat/models/internal/row_kernels.h"

namespace semat::models::sam {

LayerNorm2dImpl::LayerNorm2dImpl(int64_t channels, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
}

// ref: segment_anything/modeling/common.py LayerNorm2d.forward
torch::Tensor LayerNorm2dImpl::forward(const torch::Tensor& x) {
  const auto u = x.mean(1, /*keepdim=*/true);
  const auto s = (x - u).pow(2).mean(1, /*keepdim=*/true);
  const auto y = (x - u) / torch::sqrt(s + eps);
  return weight.view({-1, 1, 1}) * y + bias.view({-1, 1, 1});
}

namespace {

struct ContiguousGradGelu : torch::autograd::Function<ContiguousGradGelu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    ctx->save_for_backward({x});
    return torch::gelu(x);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto x = ctx->get_saved_variables()[0];
    return {at::gelu_backward(grads[0].contiguous(), x.contiguous())};
  }
};

}  // namespace

namespace {
// bf16 inference on CPU: the row kernels (semat/models/internal/row_kernels.h) stand in for
// LibTorch 1.13's slow bf16 CPU kernels. Only for contiguous tensors outside autograd.
bool row_kernel_input(const torch::Tensor& x) {
  return x.scalar_type() == torch::kBFloat16 && x.is_cpu() && x.is_contiguous() && !x.requires_grad();
}
kernels::bf16_bits* bits(const torch::Tensor& t) {
  return reinterpret_cast<kernels::bf16_bits*>(t.data_ptr<at::BFloat16>());
}
}  // namespace

bool softmax_last_dim_in_place(const torch::Tensor& s) {
  if (!row_kernel_input(s) || s.dim() == 0) return false;
  const int64_t N = s.size(-1), rows = N > 0 ? s.numel() / N : 0;
  at::parallel_for(0, rows, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, N)),
                   [&](int64_t r0, int64_t r1) { kernels::softmax_rows(bits(s) + r0 * N, r1 - r0, N, bits(s) + r0 * N); });
  return true;
}

torch::Tensor gelu_act(const torch::Tensor& x) {
  if (torch::GradMode::is_enabled() && x.requires_grad()) return ContiguousGradGelu::apply(x);
  if (row_kernel_input(x)) {
    auto y = torch::empty_like(x);
    const int64_t n = x.numel(), grain = 1 << 16;
    at::parallel_for(0, n, grain, [&](int64_t b, int64_t e) { kernels::gelu(bits(x) + b, e - b, bits(y) + b); });
    return y;
  }
  return torch::gelu(x);
}

torch::Tensor linear_rows(torch::nn::Linear& layer, const torch::Tensor& x) {
  if (layer->weight.scalar_type() == torch::kFloat || x.dim() <= 2 || !x.is_contiguous()) return layer->forward(x);
  auto sizes = x.sizes().vec();
  sizes.back() = layer->weight.size(0);
  return at::linear(x.view({-1, x.size(-1)}), layer->weight, layer->bias).view(sizes);
}

torch::Tensor layer_norm_rows(torch::nn::LayerNorm& layer, const torch::Tensor& x) {
  if (layer->weight.scalar_type() != torch::kBFloat16 || x.scalar_type() != torch::kBFloat16) return layer->forward(x);
  const auto& o = layer->options;
  if (row_kernel_input(x) && o.normalized_shape().size() == 1 && !torch::GradMode::is_enabled()) {
    const int64_t C = x.size(-1), rows = x.numel() / C;
    const auto w = layer->weight.to(torch::kFloat).contiguous(), b = layer->bias.to(torch::kFloat).contiguous();
    auto y = torch::empty_like(x);
    at::parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
      kernels::layer_norm_rows(bits(x) + r0 * C, r1 - r0, C, w.data_ptr<float>(), b.data_ptr<float>(),
                               static_cast<float>(o.eps()), bits(y) + r0 * C);
    });
    return y;
  }
  return at::layer_norm(x.to(torch::kFloat), o.normalized_shape(), layer->weight.to(torch::kFloat),
                        layer->bias.to(torch::kFloat), o.eps())
      .to(torch::kBFloat16);
}

namespace {
thread_local bool t_skip_linear_init = false;
}  // namespace

SkipLinearInit::SkipLinearInit() : previous_(t_skip_linear_init) { t_skip_linear_init = true; }
SkipLinearInit::~SkipLinearInit() { t_skip_linear_init = previous_; }

torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias) {
  if (!t_skip_linear_init) return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
  // LinearImpl initialises in its constructor: build it with no output rows (nothing to draw),
  // then give the registered parameters their real shapes. set_data keeps each parameter's
  // identity, so the member and the module's registered entry stay one tensor.
  torch::nn::Linear layer(torch::nn::LinearOptions(in, 0).bias(bias));
  torch::NoGradGuard no_grad;
  layer->options.out_features(out);
  layer->weight.set_data(torch::empty({out, in}, layer->weight.options()));
  if (bias) layer->bias.set_data(torch::empty({out}, layer->bias.options()));
  return layer;
}

torch::Tensor activate(const torch::Tensor& x, Activation act) {
  return act == Activation::kGelu ? gelu_act(x) : torch::relu(x);
}

MLPBlockImpl::MLPBlockImpl(int64_t embedding_dim, int64_t mlp_dim, Activation act_) : act(act_) {
  lin1 = register_module("lin1", make_linear(embedding_dim, mlp_dim));
  lin2 = register_module("lin2", make_linear(mlp_dim, embedding_dim));
}

torch::Tensor MLPBlockImpl::forward(const torch::Tensor& x) {
  // Named ranges for LibTorch's profiler (BM_SamEncoderProfile); flag checks when none runs.
  torch::Tensor h;
  {
    RECORD_FUNCTION("mlp.lin1", std::vector<c10::IValue>());
    h = linear_rows(lin1, x);
  }
  {
    RECORD_FUNCTION("mlp.act", std::vector<c10::IValue>());
    h = activate(h, act);
  }
  RECORD_FUNCTION("mlp.lin2", std::vector<c10::IValue>());
  return linear_rows(lin2, h);
}

MLPImpl::MLPImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers,
                 bool sigmoid_output_)
    : sigmoid_output(sigmoid_output_) {
  for (int64_t i = 0; i < num_layers; ++i) {
    const int64_t in = i == 0 ? input_dim : hidden_dim;
    const int64_t out = i == num_layers - 1 ? output_dim : hidden_dim;
    layers->push_back(torch::nn::Linear(in, out));
  }
  register_module("layers", layers);
}

torch::Tensor MLPImpl::forward(torch::Tensor x) {
  const size_t n = layers->size();
  for (size_t i = 0; i < n; ++i) {
    x = layers[i]->as<torch::nn::Linear>()->forward(x);
    if (i + 1 < n) x = torch::relu(x);
  }
  return sigmoid_output ? torch::sigmoid(x) : x;
}

}  // namespace semat::models::sam
