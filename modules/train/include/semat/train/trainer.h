// The SEMat training loop: AdamW on the SEMat parts of a model started from a plain SAM
// checkpoint, the full SEMat criterion, and what a run leaves in OUT/:
//   log.jsonl, log.csv      one line per iteration (total loss, each component, lr, time)
//   loss_plot.png           the losses so far, rewritten every plot_every iterations
//   visuals/iter_N.png      image + box | predicted trimap | alpha | ground truth of a batch
//   eval.jsonl              held-out metrics every eval.every iterations (when eval.folder is set)
//   checkpoints/iter_N/     weights.safetensors (trained tensors), optimizer.pt (AdamW state),
//                           state.json (iteration, GHM accumulators, config); checkpoints/latest
// A checkpoint folder is assembled under a temporary name and swapped into place, then `latest`
// is rewritten atomically, so an interrupted write (a crash, a full disk) never damages the last
// good checkpoint.
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
#include "semat/train/report.h"
#include "semat/train/train_config.h"

namespace semat::train {

/// One process's place in a data-parallel run: rank r of `world` processes, each on its own
/// device (cuda:local_rank), rank 0 hosting the rendezvous at master_addr:master_port. Rank 0
/// writes everything; the others only compute. See README "Several GPUs".
struct DistributedEnv {
  int rank = 0, world = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

/// torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT, or Slurm's
/// SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID; one process when none is set.
DistributedEnv distributed_env_from_environment();

struct TrainOptions {
  std::string out_dir;  ///< created if needed; log.jsonl and checkpoints/ go here
  /// A checkpoint folder (…/checkpoints/iter_N) or a run folder (its checkpoints/latest);
  /// empty: start from the config's SAM checkpoint.
  std::string resume;
  std::ostream* progress = nullptr;  ///< progress bar or lines (see progress_style), eval results
  /// kBar redraws one line (terminals); kLog prints a line every config.print_every iterations.
  ProgressStyle progress_style = ProgressStyle::kLog;
  DistributedEnv distributed;  ///< world 1: a single process
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

struct ExportResult {
  std::string path;       ///< the file written
  std::string model;      ///< preset name of the architecture ("custom" if none matches)
  int64_t iteration = 0;  ///< training iteration of the checkpoint
  int64_t tensors = 0;
  int64_t bytes = 0;
};

/// Writes a self-contained SEMat checkpoint (safetensors, the official SEMat key layout: SAM
/// weights, LoRA, prompt enhancement, matting tokens and adapter, matting decoder, the frozen
/// decoder copy) from a training checkpoint folder or run folder, so `semat matte --semat FILE`
/// and SematPredictor load it without the SAM checkpoint. The model is rebuilt from the stored
/// config: its sam_checkpoint must still exist (or give `sam_checkpoint` to point elsewhere).
/// Written atomically.
ExportResult export_checkpoint(const std::string& checkpoint, const std::string& out_path,
                               const std::string& sam_checkpoint = "");

/// The checkpoint folder a --resume argument designates (see TrainOptions::resume); IoError
/// naming the folder when there is none.
std::string resolve_checkpoint_dir(const std::string& dir);

}  // namespace semat::train
