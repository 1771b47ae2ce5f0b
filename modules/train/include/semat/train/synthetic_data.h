// Matting scenes generated on the fly with known alpha (semat/matting/synthetic_scene.h's
// varied scenes), so SEMat can be trained and tested without any dataset on disk. A sample
// depends only on (seed, index): the same run always sees the same data, which is what makes a
// resumed run equal an uninterrupted one.
#pragma once

#include <cstdint>

#include <opencv2/core/mat.hpp>

#include "semat/data/training_set.h"
#include "semat/train/train_config.h"

namespace semat::train {

/// A generated scene in the same form as the datasets on disk give (image RGB, alpha, trimap
/// 0 / 0.5 / 1, jittered tight box), so the trainer treats both alike.
using Sample = data::TrainingSample;

class SyntheticDataset {
 public:
  SyntheticDataset(SyntheticDataConfig config, uint64_t seed);

  /// Sample number `index` of the run (wraps around config.samples when that is > 0; the
  /// trimap and box jitter are drawn anew per index, the scene is the same).
  Sample get(int64_t index) const;

  const SyntheticDataConfig& config() const { return config_; }

 private:
  SyntheticDataConfig config_;
  uint64_t seed_;
};

}  // namespace semat::train
