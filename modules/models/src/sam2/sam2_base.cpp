#include "semat/models/internal/sam2/sam2_base.h"

#include <torch/torch.h>

namespace semat::models::sam2 {
namespace F = torch::nn::functional;

Sam2BaseImpl::Sam2BaseImpl(const models::Sam2Config& c) : cfg(c) {
  image_encoder = register_module("image_encoder", ImageEncoder(c.trunk, c.neck));
  const int64_t d = c.decoder.transformer_dim;
  // SAM 2's prompt encoder is SAM's (same keys and maths; labels 2 and 3 are the box corners).
  sam_prompt_encoder = register_module("sam_prompt_encoder", sam::PromptEncoder(d, c.grid(), c.image_size, c.mask_in_chans));
  sam_mask_decoder = register_module("sam_mask_decoder", MaskDecoder(c.decoder));
  no_mem_embed = register_parameter("no_mem_embed", torch::zeros({1, 1, d}));
}

// ref: sam2/utils/transforms.py SAM2Transforms (ToTensor, Resize((S, S)), Normalize)
torch::Tensor Sam2BaseImpl::preprocess(const torch::Tensor& images01) const {
  const int64_t s = cfg.image_size;
  auto x = images01;
  if (x.size(2) != s || x.size(3) != s)
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{s, s})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(true));
  const auto opts = x.options();
  const auto mean = torch::tensor({cfg.mean[0], cfg.mean[1], cfg.mean[2]}, torch::kDouble).to(opts).view({1, 3, 1, 1});
  const auto std = torch::tensor({cfg.std[0], cfg.std[1], cfg.std[2]}, torch::kDouble).to(opts).view({1, 3, 1, 1});
  return (x - mean) / std;
}

// ref: sam2_base.py forward_image; sam2_image_predictor.py set_image
Sam2ImageFeatures Sam2BaseImpl::forward_image(const torch::Tensor& x, const torch::Tensor& extra_embedding) {
  Sam2ImageFeatures f;
  f.encoder = image_encoder->forward(x, extra_embedding);
  const auto& fpn = f.encoder.backbone_fpn;
  if (cfg.decoder.use_high_res_features) {
    f.high_res_feats = {sam_mask_decoder->conv_s0->forward(fpn.at(0)), sam_mask_decoder->conv_s1->forward(fpn.at(1))};
  }
  f.image_embed = f.encoder.vision_features + no_mem_embed.view({1, -1, 1, 1});
  return f;
}

}  // namespace semat::models::sam2
