#include "semat/losses/criterion.h"

#include <torch/torch.h>

namespace semat::losses {
namespace {

const LossConfig& validated(const LossConfig& config) {
  config.validate();
  return config;
}

}  // namespace

std::vector<std::pair<std::string, double>> LossTerms::scalars() const {
  const auto value = [](const at::Tensor& t) {
    return t.defined() ? t.detach().to(at::kCPU, at::kDouble).item<double>() : 0.0;
  };
  return {{"loss", value(total)},
          {"matting", value(matting.total)},
          {"unknown_l1", value(matting.unknown_l1)},
          {"known_l1", value(matting.known_l1)},
          {"gradient", value(matting.gradient)},
          {"laplacian", value(matting.laplacian)},
          {"reg", value(reg)},
          {"trimap", value(trimap)}};
}

Criterion::Criterion(LossConfig config) : config_(validated(config)), ghm_(config_.ghm) {}

LossTerms Criterion::operator()(const LossInputs& in) {
  LossTerms out;
  out.matting = matting_losses(in.alpha, in.alpha_gt, in.trimap, config_.matting);
  const auto zero = at::zeros({}, out.matting.total.options());

  if (in.sam_logits.defined()) {
    TORCH_CHECK(in.frozen_sam_logits.defined(),
                "Criterion: sam_logits given without frozen_sam_logits");
    TORCH_CHECK(in.sam_logits.size(0) == in.alpha.size(0), "Criterion: sam_logits ",
                in.sam_logits.sizes(), " and alpha ", in.alpha.sizes(), " differ in batch size");
    out.reg = sam_regularisation_loss(in.sam_logits, in.frozen_sam_logits);
  } else {
    out.reg = zero;
  }

  if (in.trimap_logits.defined()) {
    const auto& l = in.trimap_logits;
    TORCH_CHECK(l.dim() == 4 && l.size(1) == 3 && l.size(0) == in.trimap.size(0) &&
                    l.size(2) == in.trimap.size(2) && l.size(3) == in.trimap.size(3),
                "Criterion: trimap_logits must be [B, 3, H, W] matching trimap ", in.trimap.sizes(),
                ", got ", l.sizes());
    out.trimap = ghm_(l, trimap_classes(in.trimap));
  } else {
    out.trimap = zero;
  }

  out.total = out.matting.total + config_.reg_weight * out.reg + config_.trimap_weight * out.trimap;
  return out;
}

}  // namespace semat::losses
