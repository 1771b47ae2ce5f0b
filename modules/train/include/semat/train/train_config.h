// Everything `semat train` reads from its JSON config. Defaults are the paper's recipe (AdamW
// 5e-5, 250 warm-up iterations, x0.5 at 50% and x0.2 at 75% of 60k iterations, batch 2); the
// shipped configs/tiny-synthetic.json overrides them for a CPU run of a few minutes.
// Torch-free, so the CLI and tests can parse and validate configs without building a model.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "semat/data/training_set.h"
#include "semat/losses/loss_config.h"

namespace semat::train {

/// Scenes generated on the fly with known alpha (data type "synthetic").
struct SyntheticDataConfig {
  /// Distinct scenes cycled through (e.g. 4 to overfit); 0 = a new scene for every sample.
  int64_t samples = 0;
  /// Scene side in pixels; at most the model's input size (the rest is zero padding).
  int64_t size = 256;
  /// Trimap unknown band: erosion / dilation radius drawn uniformly in [min, max] pixels.
  int64_t trimap_min_radius = 2, trimap_max_radius = 12;
  /// Each box side moves by up to this fraction of the box size (prompt noise).
  double box_jitter = 0.1;
};

/// Where training samples come from. "synthetic": SyntheticDataConfig's generated scenes.
/// "datasets": COCO-Matting and composition datasets on disk (semat::data::TrainingSet), mixed
/// by weight; `size` and `box_jitter` above apply to them too.
struct DataConfig : SyntheticDataConfig {
  std::string type = "synthetic";
  std::vector<data::DatasetSpec> datasets;
  data::AugmentConfig augment;  ///< its size and box_jitter are taken from the fields above
  /// Background threads preparing samples, and how many samples they may run ahead.
  int64_t workers = 2, prefetch = 8;
};

/// Periodic evaluation on a held-out folder: FOLDER/images/* and FOLDER/alpha/* paired by file
/// stem, each image prompted with the tight box of its ground truth (alpha > 0), scored with
/// `semat eval`'s SEMat protocol (SAD, MSE, MAD, Grad, Conn).
struct EvalConfig {
  std::string folder;      ///< empty = no evaluation
  int64_t every = 1000;    ///< iterations between evaluations (and one at the end)
  int64_t max_images = 0;  ///< the first N images by name; 0 = all
  /// Image resize to the model's frame: "cv2" (the official demo) or "torch" (the official
  /// evaluation loader, main.py --eval-only), as `semat matte --resize`.
  std::string resize = "cv2";
  /// Score the model's alpha refined by closed-form in its unknown band (`semat matte
  /// --refine`), through the same matting engine as the CLI, instead of the raw alpha.
  bool refine = false;
};

struct TrainConfig {
  /// Plain SAM checkpoint the run starts from (relative paths are resolved against the config
  /// file's folder). Empty: random weights of `model`, for throughput measurements.
  std::string sam_checkpoint;
  /// SEMat preset used when sam_checkpoint is empty (semat-tiny, semat-vit-b/l/h,
  /// semat-hq-tiny, semat-hq-vit-b/l/h, semat-sam2-tiny, semat-sam2-hiera-t/s/b+/l).
  std::string model = "semat-tiny";
  /// "sam" (SEMat_SAM), "hq-sam" (SEMat_HQ-SAM: sam_checkpoint is an HQ-SAM checkpoint such as
  /// sam_hq_vit_l.pth, the official training start), "sam2" (SEMat_SAM2: a SAM 2.0 checkpoint
  /// such as sam2_hiera_large.pt) or empty: whatever sam_checkpoint (or model) is. When given,
  /// the run refuses a checkpoint or preset of another backbone.
  std::string backbone;
  std::string device = "cpu";
  uint64_t seed = 0;
  int64_t iterations = 60000;
  int64_t batch_size = 2;
  int64_t accumulate = 1;  ///< batches whose gradients are summed per optimizer step
  double lr = 5e-5;
  double weight_decay = 0.01;
  int64_t warmup_iterations = 250;
  /// (fraction of the run, lr factor): from that iteration on, lr = base lr * factor (absolute,
  /// as detectron2's multi-step scheduler, not cumulative).
  std::vector<std::pair<double, double>> lr_steps = {{0.5, 0.5}, {0.75, 0.2}};
  double grad_clip = 0.0;  ///< max global gradient L2 norm; 0 = no clipping
  int64_t checkpoint_every = 1000;
  int64_t keep_checkpoints = 3;  ///< older checkpoint folders are deleted; 0 keeps all
  int64_t print_every = 10;      ///< console progress line period (log.jsonl gets every iteration)
  /// LibTorch intra-op threads the trainer sets; 0 = the process's setting (`semat train`: every
  /// core, semat::models::configure_runtime), or cores / ranks for several CPU ranks.
  int64_t threads = 0;
  /// Mixed precision: "off" or "bf16" (autocast to bfloat16 on CUDA, or on CPU where the CPU
  /// supports it; the losses are computed in float32 either way).
  std::string amp = "off";
  /// Recompute each ViT block in backward instead of storing its activations: one more encoder
  /// forward per step for a large cut in memory (ViT-B at 1024, batch 1, CPU: 17.3 -> 6.5 GB
  /// peak for 5% more time; ViT-L does not fit in 24 GB without it).
  bool checkpoint_activations = true;
  int64_t plot_every = 100;    ///< iterations between rewrites of loss_plot.png (and at the end)
  int64_t visual_every = 500;  ///< iterations between visual panels in visuals/; 0 = none
  /// The "loss" section: keys unknown_l1_weight, known_l1_weight, gradient_weight,
  /// laplacian_weight, gradient_lambda, laplacian_levels, reg_weight, trimap_weight, ghm_bins,
  /// ghm_momentum (defaults and ranges in semat/losses/loss_config.h).
  losses::LossConfig loss;
  DataConfig data;
  EvalConfig eval;

  /// Throws ConfigError naming the field and the accepted range.
  void validate() const;
  /// Learning rate at 0-based iteration `iter` (warm-up then steps).
  double lr_at(int64_t iter) const;
};

/// Parses a config; unknown keys or wrong types raise ConfigError naming the key (with
/// `source`, e.g. the file name, as prefix). Relative paths (sam_checkpoint, dataset folders,
/// eval.folder) resolve against `base_dir` when it is non-empty. Validates the result.
TrainConfig parse_train_config(const std::string& json_text, const std::string& source,
                               const std::string& base_dir = "");
/// parse_train_config on a file (IoError when unreadable); base_dir = the file's folder.
TrainConfig load_train_config(const std::string& path);
/// The config as JSON text (what checkpoints store, so a resume can reuse it).
std::string train_config_json(const TrainConfig& config);

}  // namespace semat::train
