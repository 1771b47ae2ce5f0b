// The full SEMat training objective (docs/training.md):
//   loss = matting + reg_weight * regularisation + trimap_weight * trimap
//   matting = unknown_l1 + known_l1 + gradient + laplacian   (each with its own weight)
// with the weights and options of LossConfig (semat/losses/loss_config.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "semat/losses/ghm_loss.h"
#include "semat/losses/loss_config.h"
#include "semat/losses/matting_loss.h"
#include "semat/losses/regularisation_loss.h"

namespace semat::losses {

/// What the model produced and what it should have produced, for one batch.
struct LossInputs {
  at::Tensor alpha;     ///< predicted alpha [B, 1, H, W] in [0, 1]
  at::Tensor alpha_gt;  ///< ground-truth alpha [B, 1, H, W] in [0, 1]
  at::Tensor trimap;    ///< [B, 1, H, W] in [0, 1]: 0 bg, 0.5 unknown, 1 fg (see trimap_classes)
  /// Trainable model's SAM-token mask logits [B, 1, H, W]; undefined: no regularisation term.
  at::Tensor sam_logits;
  /// Frozen SAM's mask logits for the same boxes, same shape as sam_logits.
  at::Tensor frozen_sam_logits;
  /// Matting-token trimap logits [B, 3, H, W] (bg, unknown, fg); undefined: no trimap term.
  at::Tensor trimap_logits;
};

/// Every component as a 0-dim tensor. `total` is the one to back-propagate; reg and trimap are
/// unweighted (0 when their inputs were not given).
struct LossTerms {
  at::Tensor total;
  MattingLosses matting;  ///< matting.total is the weighted matting sum
  at::Tensor reg;
  at::Tensor trimap;

  /// ("loss", total), ("matting", ...), ("unknown_l1", ...), ("known_l1", ...), ("gradient", ...),
  /// ("laplacian", ...), ("reg", ...), ("trimap", ...) as doubles, in this fixed order (log
  /// columns). Synchronises with the device.
  std::vector<std::pair<std::string, double>> scalars() const;
};

class Criterion {
 public:
  /// Validates the config (ConfigError).
  explicit Criterion(LossConfig config = {});

  /// Throws c10::Error (TORCH_CHECK) naming the shapes when the inputs do not fit together.
  LossTerms operator()(const LossInputs& inputs);

  const LossConfig& config() const { return config_; }
  /// The stateful trimap loss, for checkpointing its accumulators.
  GhmClassificationLoss& ghm() { return ghm_; }
  const GhmClassificationLoss& ghm() const { return ghm_; }

 private:
  LossConfig config_;
  GhmClassificationLoss ghm_;
};

}  // namespace semat::losses
