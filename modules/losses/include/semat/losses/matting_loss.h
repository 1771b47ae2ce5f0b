// The matting criterion SEMat inherits from ViTMatte (docs/training.md, semat_arch.md §7.1):
// L1 on the known and unknown regions, a Sobel gradient penalty and a Laplacian pyramid loss.
//
// Every function takes alpha mattes as float tensors [B, 1, H, W] with values in [0, 1] on one
// device, and returns a differentiable 0-dim tensor. Region losses are normalised by the region's
// pixel count over the whole batch, so they do not depend on the resolution; at H = W = 1024
// they equal the reference's `mean(...) * B * 1024^2 / sum(mask)`.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "semat/losses/loss_config.h"

namespace semat::losses {

/// Trimap classes of a trimap in [0, 1]: < 0.25 background (0), > 0.75 foreground (2), otherwise
/// unknown (1); tolerant of 8-bit trimaps divided by 255 (128/255). [B, 1, H, W] -> int64 same
/// shape.
at::Tensor trimap_classes(const at::Tensor& trimap);

/// 1 where the trimap is unknown, else 0: float [B, 1, H, W] in the trimap's dtype.
at::Tensor unknown_mask(const at::Tensor& trimap);

/// sum(mask * |pred - target|) / sum(mask); 0 (not NaN) for an empty mask. mask is 0/1,
/// [B, 1, H, W] like pred and target.
at::Tensor masked_l1_loss(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& mask);

/// Sobel gradient loss on the masked pixels, normalised like masked_l1_loss:
/// [sum m|Gx p - Gx g| + sum m|Gy p - Gy g| + lambda (sum m|Gx p| + sum m|Gy p|)] / sum m,
/// with 3x3 Sobel kernels (Gx = [-1 0 1; -2 0 2; -1 0 1], Gy its transpose) applied as
/// cross-correlation with zero padding 1. lambda >= 0 (0.01 in ViTMatte) penalises gradients of
/// the prediction itself, which smooths noisy mattes. Inputs [B, 1, H, W].
at::Tensor gradient_penalty_loss(const at::Tensor& pred, const at::Tensor& target,
                                 const at::Tensor& mask, double lambda = 0.01);

/// Laplacian pyramid L1 over the whole image: sum_l 2^l mean|lap_l(pred) - lap_l(target)| / levels.
/// Each level crops to even size, blurs with the 5x5 binomial kernel outer([1,4,6,4,1]) / 256 and
/// reflect padding 2, keeps every second pixel, and takes the residual against the zero-inserted,
/// x4, blurred upsampling. Inputs [B, C, H, W]; levels >= 1. Every level must stay at least
/// 4 x 4, i.e. H, W >= 2^(levels + 1) (64 for the default 5 levels); otherwise throws
/// c10::Error naming the shape.
at::Tensor laplacian_loss(const at::Tensor& pred, const at::Tensor& target, int64_t levels = 5);

/// The four terms, unweighted, plus their weighted sum (`total`). All 0-dim tensors.
struct MattingLosses {
  at::Tensor unknown_l1;  ///< L1 on trimap-unknown pixels
  at::Tensor known_l1;    ///< L1 on known (bg + fg) pixels
  at::Tensor gradient;    ///< Sobel penalty on unknown pixels
  at::Tensor laplacian;   ///< pyramid loss on the whole image
  at::Tensor total;
};

/// pred, target: alpha [B, 1, H, W] in [0, 1]; trimap: [B, 1, H, W] in [0, 1] (0 bg, 0.5 unknown,
/// 1 fg; see trimap_classes).
MattingLosses matting_losses(const at::Tensor& pred, const at::Tensor& target,
                             const at::Tensor& trimap, const MattingLossOptions& options = {});

}  // namespace semat::losses
