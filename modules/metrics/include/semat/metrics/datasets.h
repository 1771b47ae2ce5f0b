// Where the ground truth of the benchmarks in SEMat's test configs lives, relative to a data root.
#pragma once

#include <string>
#include <vector>

#include "semat/metrics/evaluate.h"

namespace semat::metrics {

struct DatasetLayout {
  std::string name;
  std::string gt_dir;     ///< the folder the ground truths were taken from (SIM: the testset)
  std::string image_dir;  ///< the image folder that drove the selection, empty if GT-driven
  std::vector<GtItem> items;
};

/// p3m500np, aim500, rw100, am2k, rwp636, sim.
const std::vector<std::string>& dataset_names();

/// Resolves `name` under `root`, the folder holding AIM-500/, AM-2K/, P3M-10k/,
/// RealWorldPortrait-636/, RefMatte_RW_100/ or SIMD/ (the dataset folder itself, or a folder
/// further down the path, is accepted too). Image-driven sets (aim500, am2k, p3m500np, rwp636)
/// evaluate one GT per image when the image folder is present, like SEMat's loaders; rw100 and
/// sim take every GT file (SIM names are "category/stem"). Throws ConfigError for an unknown name
/// and IoError / DataError naming the expected folder or file.
DatasetLayout dataset_layout(const std::string& name, const std::string& root);

}  // namespace semat::metrics
