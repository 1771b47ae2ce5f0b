#include "semat/models/internal/vitmatte/detail_capture.h"

#include <torch/torch.h>

namespace semat::models::vitmatte {
namespace F = torch::nn::functional;

BasicConv3x3Impl::BasicConv3x3Impl(int64_t in, int64_t out, int64_t stride) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(out));
}

torch::Tensor BasicConv3x3Impl::forward(const torch::Tensor& x) {
  return torch::relu(bn->forward(conv->forward(x)));
}

ConvStreamImpl::ConvStreamImpl(int64_t in_chans, const std::vector<int64_t>& out) {
  int64_t in = in_chans;
  for (int64_t o : out) {
    convs->push_back(BasicConv3x3(in, o, 2));
    in = o;
  }
  register_module("convs", convs);
}

std::vector<torch::Tensor> ConvStreamImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> d{x};
  for (const auto& m : *convs) d.push_back(m->as<BasicConv3x3>()->forward(d.back()));
  return d;
}

FusionBlockImpl::FusionBlockImpl(int64_t in, int64_t out) {
  conv = register_module("conv", BasicConv3x3(in, out, 1));
}

torch::Tensor FusionBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& detail) {
  const auto up = F::interpolate(x, F::InterpolateFuncOptions()
                                        .scale_factor(std::vector<double>{2.0, 2.0})
                                        .mode(torch::kBilinear)
                                        .align_corners(false));
  return conv->forward(torch::cat({detail, up}, 1));
}

MattingHeadImpl::MattingHeadImpl(int64_t in, int64_t mid) {
  matting_convs = register_module(
      "matting_convs",
      torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, mid, 3).padding(1)),
                            torch::nn::BatchNorm2d(mid), torch::nn::ReLU(),
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(mid, 1, 1))));
}

torch::Tensor MattingHeadImpl::forward(const torch::Tensor& x) { return matting_convs->forward(x); }

DetailCaptureImpl::DetailCaptureImpl(const VitMatteConfig& c) {
  convstream = register_module("convstream", ConvStream(c.in_chans, c.convstream_out));
  // Fusion block i takes the previous output and detail D_{n-1-i}: D3 first, the input last.
  std::vector<int64_t> detail_widths{c.in_chans};
  detail_widths.insert(detail_widths.end(), c.convstream_out.begin(), c.convstream_out.end());
  int64_t in = c.embed_dim;
  for (size_t i = 0; i < c.fusion_out.size(); ++i) {
    fusion_blks->push_back(FusionBlock(in + detail_widths[detail_widths.size() - 1 - i], c.fusion_out[i]));
    in = c.fusion_out[i];
  }
  register_module("fusion_blks", fusion_blks);
  matting_head = register_module("matting_head", MattingHead(in, c.head_mid));
}

torch::Tensor DetailCaptureImpl::forward(const torch::Tensor& features, const torch::Tensor& images,
                                         DecoderTrace* trace) {
  const auto d = convstream->forward(images);
  auto x = features;
  const size_t n = fusion_blks->size();
  for (size_t i = 0; i < n; ++i) {
    x = fusion_blks[i]->as<FusionBlock>()->forward(x, d[n - 1 - i]);
    if (trace) trace->fusion.push_back(x);
  }
  auto logits = matting_head->forward(x);
  if (trace) trace->details = d, trace->logits = logits;
  return logits;
}

}  // namespace semat::models::vitmatte
