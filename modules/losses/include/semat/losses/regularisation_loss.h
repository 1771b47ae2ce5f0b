// Regularisation against the frozen pre-trained SAM (semat_arch.md §7.2): keeps the trainable
// model's SAM-token mask close to what the untouched SAM predicts for the same box, so LoRA and
// prompt enhancement do not erase SAM's segmentation prior.
#pragma once

#include <ATen/core/Tensor.h>

namespace semat::losses {

/// Mean per-pixel binary cross-entropy with logits between `sam_logits` (the trainable model's
/// SAM mask logits) and the frozen SAM's mask binarised at probability 0.5 (logit > 0 is
/// foreground; exactly 0.5 counts as background). No gradient flows into `frozen_sam_logits`.
/// Both [B, 1, H, W] (any equal shape) at the same resolution; the caller upsamples.
at::Tensor sam_regularisation_loss(const at::Tensor& sam_logits,
                                   const at::Tensor& frozen_sam_logits);

}  // namespace semat::losses
