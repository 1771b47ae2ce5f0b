#include "semat/models/internal/semat_net/lora.h"

#include <torch/torch.h>

namespace semat::models::semat_net {
namespace {

torch::nn::ModuleDict one_entry(std::shared_ptr<torch::nn::Module> m) {
  torch::nn::ModuleDict d;
  d->update({{"default", std::move(m)}});
  return d;
}

// peft "gaussian" init: A ~ N(0, 1/r), B = 0.
void init_gaussian(torch::Tensor& a, torch::Tensor& b, int64_t rank) {
  torch::NoGradGuard no_grad;
  a.normal_(0.0, 1.0 / static_cast<double>(rank));
  b.zero_();
}

// The part of both LoRA layers' construction that does not depend on the layer kind: the
// adapters follow the base weight's device and dtype, get peft's gaussian init, and are
// registered under peft's names (lora_dropout / lora_A / lora_B, each a {"default": ...} dict).
template <typename Impl, typename Layer>
void attach_adapters(Impl& self, Layer& A, Layer& B, int64_t rank, double dropout) {
  const torch::Tensor& w = self.base_layer->weight;
  A->to(w.device(), w.scalar_type());
  B->to(w.device(), w.scalar_type());
  init_gaussian(A->weight, B->weight, rank);
  self.lora_dropout =
      self.register_module("lora_dropout", one_entry(torch::nn::Dropout(dropout).ptr()));
  self.lora_A = self.register_module("lora_A", one_entry(A.ptr()));
  self.lora_B = self.register_module("lora_B", one_entry(B.ptr()));
}

}  // namespace

LoraLinearImpl::LoraLinearImpl(torch::nn::Linear base, int64_t rank, double alpha, double dropout)
    : scaling(alpha / static_cast<double>(rank)) {
  const int64_t in = base->options.in_features(), out = base->options.out_features();
  base_layer = register_module("base_layer", std::move(base));
  A = torch::nn::Linear(torch::nn::LinearOptions(in, rank).bias(false));
  B = torch::nn::Linear(torch::nn::LinearOptions(rank, out).bias(false));
  attach_adapters(*this, A, B, rank, dropout);
}

// ref: peft tuners/lora/layer.py Linear.forward (result = base(x) + B(A(dropout(x))) * scaling)
torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  auto y = base_layer->forward(x);
  if (merged) return y;
  auto d = is_training() ? lora_dropout["default"]->as<torch::nn::Dropout>()->forward(x) : x;
  return y + B->forward(A->forward(d)) * scaling;
}

void LoraLinearImpl::merge() {
  if (merged) return;
  torch::NoGradGuard no_grad;
  base_layer->weight.add_(torch::matmul(B->weight, A->weight) * scaling);
  merged = true;
}

void LoraLinearImpl::unmerge() {
  if (!merged) return;
  torch::NoGradGuard no_grad;
  base_layer->weight.sub_(torch::matmul(B->weight, A->weight) * scaling);
  merged = false;
}

LoraConv2dImpl::LoraConv2dImpl(torch::nn::Conv2d base, int64_t rank, double alpha, double dropout)
    : scaling(alpha / static_cast<double>(rank)) {
  const auto& o = base->options;
  const int64_t in = o.in_channels(), out = o.out_channels();
  base_layer = register_module("base_layer", std::move(base));
  A = torch::nn::Conv2d(torch::nn::Conv2dOptions(in, rank, o.kernel_size())
                            .stride(o.stride())
                            .padding(o.padding())
                            .bias(false));
  B = torch::nn::Conv2d(torch::nn::Conv2dOptions(rank, out, 1).bias(false));
  attach_adapters(*this, A, B, rank, dropout);
}

torch::Tensor LoraConv2dImpl::forward(const torch::Tensor& x) {
  auto y = base_layer->forward(x);
  if (merged) return y;
  auto d = is_training() ? lora_dropout["default"]->as<torch::nn::Dropout>()->forward(x) : x;
  return y + B->forward(A->forward(d)) * scaling;
}

namespace {
// delta[o, i, kh, kw] = scaling * sum_r B[o, r] A[r, i, kh, kw]
torch::Tensor conv_delta(const torch::Tensor& a, const torch::Tensor& b, double scaling) {
  const int64_t rank = a.size(0);
  return (torch::matmul(b.reshape({b.size(0), rank}), a.reshape({rank, -1})) * scaling)
      .view({b.size(0), a.size(1), a.size(2), a.size(3)});
}
}  // namespace

void LoraConv2dImpl::merge() {
  if (merged) return;
  torch::NoGradGuard no_grad;
  base_layer->weight.add_(conv_delta(A->weight, B->weight, scaling));
  merged = true;
}

void LoraConv2dImpl::unmerge() {
  if (!merged) return;
  torch::NoGradGuard no_grad;
  base_layer->weight.sub_(conv_delta(A->weight, B->weight, scaling));
  merged = false;
}

namespace {

// Wraps `owner`'s child `name` in LoRA and routes the owner's forward through it (`hook`).
template <class Lora, class Layer>
void wrap(torch::nn::Module& owner, const std::string& name, const Layer& layer,
          sam::LayerHook& hook, int64_t rank, double alpha) {
  auto lora = Lora(layer, rank, alpha);
  owner.replace_module(name, lora);
  hook = [p = lora.ptr()](const torch::Tensor& x) { return p->forward(x); };
}

}  // namespace

void apply_lora(sam::ImageEncoderViTImpl& enc, int64_t rank, double alpha) {
  auto& pe = *enc.patch_embed;
  wrap<LoraConv2d>(pe, "proj", pe.proj, pe.proj_hook, rank, alpha);
  for (const auto& m : *enc.blocks) {
    auto& attn = *m->as<sam::Block>()->attn;
    wrap<LoraLinear>(attn, "qkv", attn.qkv, attn.qkv_hook, rank, alpha);
    wrap<LoraLinear>(attn, "proj", attn.proj, attn.proj_hook, rank, alpha);
  }
}

void apply_lora(sam2::ImageEncoderImpl& enc, int64_t rank, double alpha) {
  auto& trunk = *enc.trunk;
  for (auto* pe : {&trunk.patch_embed, &trunk.bbox_mask_patch_embed})
    if (!pe->is_empty()) wrap<LoraConv2d>(**pe, "proj", (*pe)->proj, (*pe)->proj_hook, rank, alpha);
  for (const auto& m : *trunk.blocks) {
    auto& block = *m->as<sam2::MultiScaleBlock>();
    auto& attn = *block.attn;
    wrap<LoraLinear>(attn, "qkv", attn.qkv, attn.qkv_hook, rank, alpha);
    wrap<LoraLinear>(attn, "proj", attn.proj, attn.proj_hook, rank, alpha);
    if (!block.proj.is_empty()) wrap<LoraLinear>(block, "proj", block.proj, block.proj_hook, rank, alpha);
  }
}

void merge_lora(torch::nn::Module& module) {
  for (auto& m : module.modules()) {
    if (auto* l = m->as<LoraLinearImpl>()) l->merge();
    if (auto* c = m->as<LoraConv2dImpl>()) c->merge();
  }
}

void unmerge_lora(torch::nn::Module& module) {
  for (auto& m : module.modules()) {
    if (auto* l = m->as<LoraLinearImpl>()) l->unmerge();
    if (auto* c = m->as<LoraConv2dImpl>()) c->unmerge();
  }
}

}  // namespace semat::models::semat_net
