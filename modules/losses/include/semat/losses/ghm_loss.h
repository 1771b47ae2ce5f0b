// Gradient harmonising (GHM-C) cross-entropy for the 3-class trimap head (semat_arch.md §7.3,
// 'NGHM'). Pixels are weighted by the inverse of how many pixels share their gradient norm
// g = 1 - softmax(logits)[target], so the many easy background/foreground pixels do not drown
// the few hard unknown-region ones. The per-bin counts are smoothed across iterations by an
// exponential moving average, which is state: save it with accumulators() and give it back with
// set_accumulators() when resuming, or the first steps after a resume weigh pixels differently.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "semat/losses/loss_config.h"

namespace semat::losses {

class GhmClassificationLoss {
 public:
  /// Throws ConfigError for bins < 1 or momentum outside [0, 1).
  explicit GhmClassificationLoss(GhmOptions options = {});

  /// logits: [B, C, H, W] (or [N, C]) raw scores; classes: int64 class indices in [0, C),
  /// [B, 1, H, W], [B, H, W] (or [N]) with B*H*W elements. Updates the accumulators of the
  /// non-empty bins (acc = m acc + (1 - m) count; empty bins keep theirs), weights each pixel by
  /// 1 / acc[its bin] / (number of non-empty bins), then, with normalize, divides the weights by
  /// their sum. Returns -sum(w * log_softmax(logits)[class]) as a 0-dim tensor; the weights carry
  /// no gradient.
  at::Tensor operator()(const at::Tensor& logits, const at::Tensor& classes);

  /// The moving averages of the bin counts (pixels), float64 [bins] on the CPU (a copy).
  at::Tensor accumulators() const;
  /// Restores accumulators(); throws InvalidArgument for a wrong size or negative values.
  void set_accumulators(const at::Tensor& acc);
  /// Back to the untrained state (all zeros).
  void reset();

  const GhmOptions& options() const { return options_; }

 private:
  GhmOptions options_;
  at::Tensor acc_;  // float64 [bins], on the device of the last logits
};

}  // namespace semat::losses
