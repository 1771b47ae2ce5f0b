#include "semat/models/internal/sam/sam.h"

#include <torch/torch.h>

namespace semat::models::sam {
namespace F = torch::nn::functional;

SamImpl::SamImpl(const models::SamConfig& c) : cfg(c) {
  image_encoder = register_module("image_encoder", ImageEncoderViT(c.encoder));
  prompt_encoder = register_module(
      "prompt_encoder",
      PromptEncoder(c.prompt.embed_dim, c.encoder.grid(), c.encoder.img_size, c.prompt.mask_in_chans));
  if (c.hq) {
    // One module under one name: the HQ decoder is a SAM decoder with more parts.
    mask_decoder_hq = MaskDecoderHQ(c.decoder, c.encoder.embed_dim);
    mask_decoder = register_module("mask_decoder", MaskDecoder(std::shared_ptr<MaskDecoderImpl>(mask_decoder_hq.ptr())));
  } else {
    mask_decoder = register_module("mask_decoder", MaskDecoder(c.decoder));
  }
  pixel_mean = torch::tensor({c.pixel_mean[0], c.pixel_mean[1], c.pixel_mean[2]}, torch::kFloat).view({3, 1, 1});
  pixel_std = torch::tensor({c.pixel_std[0], c.pixel_std[1], c.pixel_std[2]}, torch::kFloat).view({3, 1, 1});
}

torch::Tensor SamImpl::preprocess(const torch::Tensor& x) const {
  const auto dev = x.device();
  auto y = (x - pixel_mean.to(dev)) / pixel_std.to(dev);
  const int64_t s = cfg.encoder.img_size;
  return F::pad(y, F::PadFuncOptions({0, s - x.size(3), 0, s - x.size(2)}));
}

torch::Tensor SamImpl::postprocess_masks(const torch::Tensor& masks, int64_t input_h, int64_t input_w,
                                         int64_t original_h, int64_t original_w) const {
  const int64_t s = cfg.encoder.img_size;
  auto opts = F::InterpolateFuncOptions().mode(torch::kBilinear).align_corners(false);
  auto m = F::interpolate(masks, opts.size(std::vector<int64_t>{s, s}));
  m = m.narrow(2, 0, input_h).narrow(3, 0, input_w);
  // Bilinear resampling to the same size is the identity with align_corners=false.
  if (input_h == original_h && input_w == original_w) return m.contiguous();
  return F::interpolate(m, opts.size(std::vector<int64_t>{original_h, original_w}));
}

}  // namespace semat::models::sam
