// Weights and options of the SEMat training objective (docs/training.md), with the defaults of
// the official SEMat_SAM config: matting terms 1 each, reg 0.2, trimap 0.05, GHM 10 bins /
// momentum 0.75. The one definition of them: Criterion computes the loss from a LossConfig and
// the training config (semat/train/train_config.h) holds one as its "loss" section. Torch-free.
#pragma once

#include <cstdint>

namespace semat::losses {

/// The matting terms (matting_losses): weights of the four terms and their options.
struct MattingLossOptions {
  double unknown_l1_weight = 1.0;
  double known_l1_weight = 1.0;
  double gradient_weight = 1.0;
  double laplacian_weight = 1.0;
  double gradient_lambda = 0.01;  ///< lambda of gradient_penalty_loss, >= 0
  int64_t laplacian_levels = 5;   ///< pyramid levels of laplacian_loss, >= 1
};

/// The GHM trimap loss (GhmClassificationLoss).
struct GhmOptions {
  int64_t bins = 10;       ///< equal-width bins of g over [0, 1]
  double momentum = 0.75;  ///< in [0, 1); 0 uses this batch's counts only
  bool normalize = true;   ///< 'NGHM': weights sum to 1, so the loss is a weighted mean CE
};

/// loss = matting + reg_weight * regularisation + trimap_weight * trimap.
struct LossConfig {
  MattingLossOptions matting;
  double reg_weight = 0.2;      ///< weight of sam_regularisation_loss
  double trimap_weight = 0.05;  ///< weight of the GHM trimap loss
  GhmOptions ghm;

  /// Throws ConfigError for negative or non-finite weights, gradient_lambda < 0,
  /// laplacian_levels < 1, ghm bins < 1 or momentum outside [0, 1), naming the option by its
  /// key in the training config's "loss" section (e.g. 'reg_weight').
  void validate() const;
};

}  // namespace semat::losses
