#include "semat/losses/regularisation_loss.h"

#include <torch/torch.h>

namespace semat::losses {

at::Tensor sam_regularisation_loss(const at::Tensor& sam_logits,
                                   const at::Tensor& frozen_sam_logits) {
  TORCH_CHECK(sam_logits.defined() && frozen_sam_logits.defined(),
              "sam_regularisation_loss: undefined input tensor");
  TORCH_CHECK(sam_logits.sizes() == frozen_sam_logits.sizes(), "sam_regularisation_loss: frozen ",
              "SAM logits ", frozen_sam_logits.sizes(), " do not match the model's ",
              sam_logits.sizes(), " (upsample both to the same resolution)");
  // sigmoid(x) > 0.5 <=> x > 0, without computing the sigmoid.
  const auto target = frozen_sam_logits.detach().gt(0).to(sam_logits.scalar_type());
  return at::binary_cross_entropy_with_logits(sam_logits, target);
}

}  // namespace semat::losses
