// The SEMat training loop: AdamW on the SEMat parts of a model started from a plain SAM
// checkpoint, the full SEMat criterion, one JSON line per iteration in OUT/log.jsonl and
// checkpoints in OUT/checkpoints/iter_NNNNNNNN/ (weights.safetensors: the trained tensors;
// optimizer.pt: AdamW state; state.json: iteration, GHM accumulators, config). A checkpoint folder
// is assembled under a temporary name and renamed into place, then OUT/checkpoints/latest is
// rewritten atomically, so an interrupted write never damages the last good checkpoint.
//
// Reproducibility: the data depend only on (seed, sample index) and the torch generator is
// reseeded from (seed, iteration) before each iteration (LoRA dropout), so the RNG "state" to
// save is the iteration itself and a resumed CPU run repeats an uninterrupted one exactly.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "semat/io/checkpoint.h"
#include "semat/train/train_config.h"

namespace semat::train {

struct TrainOptions {
  std::string out_dir;  ///< created if needed; log.jsonl and checkpoints/ go here
  /// A checkpoint folder (…/checkpoints/iter_N) or a run folder (its checkpoints/latest);
  /// empty: start from the config's SAM checkpoint.
  std::string resume;
  std::ostream* progress = nullptr;  ///< progress lines every config.print_every iterations
};

struct TrainResult {
  int64_t first_iteration = 0;  ///< 1-based number of the first iteration run by this call
  int64_t last_iteration = 0;   ///< 1-based number of the last one (== config.iterations)
  std::vector<double> losses;   ///< total loss of each iteration run by this call
  double seconds = 0;
  double iterations_per_second = 0;
  std::string last_checkpoint;  ///< folder of the final checkpoint
};

class Trainer {
 public:
  /// Builds the model (or resumes). Throws ConfigError / IoError / CheckpointError naming what
  /// is wrong before anything is written.
  Trainer(TrainConfig config, TrainOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Runs the remaining iterations, checkpointing every config.checkpoint_every and at the end.
  TrainResult run();
  /// Completed iterations (the resumed one after a resume).
  int64_t iteration() const;

  /// CPU copies of the frozen SAM parameters / of what checkpoints store (tests, export).
  std::vector<io::TensorData> frozen_weights() const;
  std::vector<io::TensorData> trained_weights() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Trainer(config, options).run().
TrainResult train(const TrainConfig& config, const TrainOptions& options);

/// The checkpoint folder a --resume argument designates (see TrainOptions::resume); IoError
/// naming the folder when there is none.
std::string resolve_checkpoint_dir(const std::string& dir);

}  // namespace semat::train
