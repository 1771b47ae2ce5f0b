// The COCO-Matting builder: COCO annotations -> accessory fusion -> mask-to-matte -> scored
// alpha mattes, resumable, crash-safe and shardable across machines.
//
// Output folder (<sfx> is empty, or "-K-of-N" with --shard K/N so shards may share a folder):
//   alpha/<image_id>_<ann_id>.png     8-bit alpha, the image's size
//   trimap/<image_id>_<ann_id>.png    0 / 128 / 255
//   SEMat_concat/<image_id>_<ann_id>.png  image | alpha | trimap panels (with export_concat)
//   index<sfx>.jsonl                   one IndexRecord per kept matte
//   skipped<sfx>.jsonl                 instances solved but not kept (low score, solver failure),
//                                      so a rerun does not solve them again
//   summary<sfx>.json                  counts per reason, parameters, timing
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "semat/data/fusion.h"
#include "semat/engine/spec.h"

namespace semat::data {

/// Images are split into N disjoint shards by a hash of the image id; shard K of N is 0-based.
struct Shard {
  int index = 0;
  int count = 1;

  bool contains(std::int64_t image_id) const;
  /// "" for 1 shard, else "-K-of-N" (the file name suffix of a shard's index and summary).
  std::string suffix() const;
};

/// Parses "K/N" with 0 <= K < N. Throws ConfigError naming --shard otherwise.
Shard parse_shard(const std::string& text);

enum class ProgressMode { kAuto, kBar, kLog, kOff };

struct BuildOptions {
  std::string annotations;     ///< COCO instances or panoptic JSON
  std::string images;          ///< folder the images' file_name values are relative to
  std::string out;             ///< output folder (created)
  std::string panoptic_masks;  ///< folder of the panoptic PNGs (panoptic annotations only)
  FusionParams fusion;
  std::vector<std::string> accessories;  ///< category names; empty = default_accessory_names()
  double eta = 12.0;        ///< mask-to-matte area divisor (matting::TrimapParams::eta)
  double min_score = 95.0;  ///< keep mattes with score >= this, [0, 100]
  Shard shard;
  int jobs = 0;                ///< worker threads; 0 = all cores
  std::int64_t limit = 0;      ///< at most this many person instances of the shard; 0 = all
  bool export_concat = false;  ///< also write SEMat_concat/
  ProgressMode progress = ProgressMode::kAuto;  ///< kAuto: a bar on a terminal, else log lines
};

/// Builds (or resumes) the dataset with one matting engine (semat/engine) made from `engine`:
/// its mask stage is "given" (the fused COCO mask of each person; --mask must be auto or given),
/// its trimap rule uses `options.eta`, and closed-form solves on the trimap's crop (8 px margin)
/// unless engine.classical.crop_margin says otherwise. The engine's model (SEMat, prompted by the
/// person's box) is loaded once and shared by the workers. Each record's "backend" is the alpha
/// stage ("closed-form", "semat", "semat+refine"); summary.json's "engine" the whole engine.
///
/// Returns the summary also written to summary<sfx>.json: and returns the summary also written to summary<sfx>.json:
/// {"persons": n, "kept": n, "kept_new": n, "resumed": n, "skipped": {reason: n}, ...}. Skip
/// reasons: missing_image, bad_image, missing_panoptic_png, unknown_image,
/// broken_segmentation, broken_image_entry, crowd, empty_mask, low_score, matting_failed.
/// Throws for problems that make the whole run pointless (bad flags, malformed JSON, no
/// 'person' category, an output folder that cannot be written or is used by another run).
nlohmann::json build_dataset(const BuildOptions& options, const engine::EngineSpec& engine = {});

struct MergeOptions {
  /// Output folders of build-dataset runs (every index*.jsonl in them) or index files.
  std::vector<std::string> inputs;
  std::string out;      ///< folder for the merged index.jsonl and summary.json
  bool verify = false;  ///< drop records whose PNGs are missing or incomplete
};

/// Merges shard indexes into out/index.jsonl (paths rebased to `out`, sorted by image id then
/// annotation id, one record per instance: the last one read wins) and sums their summaries.
/// Returns the merged summary.
nlohmann::json merge_indexes(const MergeOptions& options);

}  // namespace semat::data
