// Training data for the SEMat trainer read from folders on disk: COCO-Matting (a build-dataset
// folder or the official concatenated files) and composition datasets (foreground + alpha over a
// background pool), with the official training-time augmentation (architecture notes 8.3).
//
// Every sample is a pure function of (seed, index). The trainer resumes a run by asking for the
// same indices again, and loads samples on several threads in any order, so nothing here may
// depend on call order, thread or global random state.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace semat::data {

/// One training example at the network's input size.
struct TrainingSample {
  cv::Mat image;   ///< CV_8UC3 RGB, size x size (zero padding where there is no content)
  cv::Mat alpha;   ///< CV_32F in [0, 1], size x size (0 in the padding)
  cv::Mat trimap;  ///< CV_32F with values exactly 0 (bg), 0.5 (unknown), 1 (fg)
  /// x1, y1, x2, y2 pixels in the sample: tight box of alpha > 0 with jitter, clamped to the
  /// content area (never into the padding, like a box a user draws on the image), x2 > x1,
  /// y2 > y1. The whole content area when alpha has no pixel > 0.
  double box[4] = {0, 0, 0, 0};
  std::string source;  ///< "<dataset name>:<file stem>" for logs and error messages
};

struct DatasetSpec {
  std::string type;     ///< "coco-matting" | "coco-matting-concat" | "composition"
  std::string name;     ///< shown in logs; empty = type
  double weight = 1.0;  ///< sampling weight: dataset i is drawn with probability w_i / sum(w), whatever its size
  /// coco-matting: a `semat build-dataset --out` folder (every index*.jsonl in it, sorted by name;
  /// the last line of an instance wins, as after a rebuilt shard); its records' alpha/trimap
  /// paths are relative to it. coco-matting-concat: folder of concatenated files (searched
  /// recursively for .png/.jpg/.jpeg).
  std::string root;
  std::string images;    ///< coco-matting only: the folder the records' "image" paths are relative to
  double min_score = 0;  ///< coco-matting: keep records with score >= min_score
  /// coco-matting-concat: panel count; 0 = the official rule from the file's full path ('06-14'
  /// -> 4, 'ori_mask' or 'SEMat' -> 3, else 5), so files laid out for the official loader read
  /// the same here. Otherwise 3 or more.
  int panels = 0;
  /// composition: folders; fg and alpha files (directly in the folder) pair by file stem, the
  /// extension may differ; bg is a separate pool (searched recursively).
  std::string fg, alpha, bg;
};

struct AugmentConfig {
  int64_t size = 1024;      ///< output side
  double box_jitter = 0.1;  ///< each box side moves by a random integer in [-ceil(f*w), ceil(f*w)] (w or h of the box), as the official GenBBox
  double scale_min = 0.5, scale_max = 1.5;  ///< coco-matting random resize: longest side = round(s * size)
  bool flip = true;          ///< horizontal flip p = 0.5
  bool color_jitter = true;  ///< HSV jitter (official RandomJitter)
  double two_fg_prob = 0.5;  ///< composition: merge two foregrounds (alpha = 1-(1-a1)(1-a2))
  /// composition: with this probability the (merged) foreground and alpha are first resized to
  /// square_side x square_side, ignoring the aspect ratio, with a random interpolation (the
  /// official DataGenerator's p = 0.25 resize to 1280 x 1280).
  double square_resize_prob = 0.25;
  int64_t square_side = 1280;
  /// Composition trimap: random erosion kernel diameters (a disc), drawn at a 640 px reference
  /// scale as the official GenMask does on its 640 x 640 copy, then scaled by
  /// sqrt(w * h) / 640 of the image being cropped so the unknown band keeps its relative width.
  int64_t trimap_min_kernel = 1, trimap_max_kernel = 29;
};

class TrainingSet {
 public:
  /// Scans every dataset now (file lists, index files) so that a wrong folder fails before
  /// training starts. Throws ConfigError for a bad spec (unknown type, negative/all-zero weights,
  /// missing folder field, bad augmentation values) and DataError/IoError naming the folder or
  /// file for: missing folder, empty dataset, fg/alpha names that do not pair (the first
  /// unpaired file and the folder it lacks a partner in), concat file whose width is not
  /// divisible by the panel count (read from the PNG/JPEG header only), index record whose
  /// alpha/trimap/image file is missing.
  TrainingSet(std::vector<DatasetSpec> specs, AugmentConfig aug, uint64_t seed);
  ~TrainingSet();
  TrainingSet(TrainingSet&&) noexcept;
  TrainingSet& operator=(TrainingSet&&) noexcept;
  TrainingSet(const TrainingSet&) = delete;
  TrainingSet& operator=(const TrainingSet&) = delete;

  /// A pure function of (seed, index): same sample whatever thread or order it is called in
  /// (every random choice comes from a generator seeded with splitmix64(seed, index), with
  /// integer/uniform helpers of our own, so results do not depend on the standard library).
  /// Thread-safe. Throws DataError naming the file if an image cannot be read or decoded, or
  /// when an image and its alpha differ in size.
  TrainingSample get(int64_t index) const;
  /// Which dataset and item `index` draws (cheap: no image I/O); get(index) uses the same choice.
  std::pair<size_t, size_t> pick(int64_t index) const;
  size_t dataset_count() const;
  const DatasetSpec& spec(size_t i) const;
  size_t dataset_size(size_t i) const;
  const AugmentConfig& augment() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Runs a producer on background threads so the trainer never waits on disk: next() returns
/// producer(first), producer(first+1), ... strictly in order, computed up to `depth` ahead by
/// `workers` threads. An exception thrown by the producer for index k is rethrown by the next()
/// call that would return k (later calls go on with k+1). workers <= 0 runs the producer inside
/// next() (no threads); depth < 1 counts as 1. The destructor stops and joins the workers
/// promptly: it waits only for producer calls already running, never for the queue to drain.
class Prefetcher {
 public:
  using Producer = std::function<TrainingSample(int64_t)>;
  Prefetcher(Producer producer, int64_t first, int workers, int depth);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;
  TrainingSample next();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semat::data
