#include "semat/metrics/datasets.h"

#include <algorithm>
#include <filesystem>

#include "semat/core/error.h"

namespace fs = std::filesystem;

namespace semat::metrics {
namespace {

struct Spec {
  const char* name;
  const char* gt;     // GT folder relative to the root (SIM: the folder of categories)
  const char* image;  // image folder that drives the selection, nullptr if GT-driven
};

// Paths from SEMat's configs/semantic_enhanced_matting/dataloader.py (GT = image path with
// original -> mask, original_image -> mask, image -> alpha; RW100 and SIM glob the GT).
const Spec kSpecs[] = {
    {"p3m500np", "P3M-10k/validation/P3M-500-NP/mask", "P3M-10k/validation/P3M-500-NP/original_image"},
    {"aim500", "AIM-500/mask", "AIM-500/original"},
    {"rw100", "RefMatte_RW_100/mask", nullptr},
    {"am2k", "AM-2K/validation/mask", "AM-2K/validation/original"},
    {"rwp636", "RealWorldPortrait-636/alpha", "RealWorldPortrait-636/image"},
    {"sim", "SIMD/generated_testset", nullptr},
};

// root/rel, or, when the user pointed --root further down the path (at AIM-500/ itself, say),
// root/<rel without its first components>.
fs::path resolve(const fs::path& root, const fs::path& rel) {
  std::error_code ec;
  std::vector<fs::path> parts(rel.begin(), rel.end());
  for (size_t skip = 0; skip < parts.size(); ++skip) {
    fs::path p = root;
    for (size_t i = skip; i < parts.size(); ++i) p /= parts[i];
    if (fs::is_directory(p, ec)) return p;
  }
  return {};
}

}  // namespace

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Spec& s : kSpecs) n.push_back(s.name);
    return n;
  }();
  return names;
}

DatasetLayout dataset_layout(const std::string& name, const std::string& root) {
  const Spec* spec = nullptr;
  for (const Spec& s : kSpecs)
    if (name == s.name) spec = &s;
  if (!spec) {
    std::string known;
    for (const std::string& n : dataset_names()) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("--dataset '" + name + "' is unknown: use one of " + known);
  }
  std::error_code ec;
  SEMAT_CHECK(fs::is_directory(root, ec), IoError, "--root '" << root << "' is not a folder");
  DatasetLayout out;
  out.name = name;
  const fs::path gt_dir = resolve(root, spec->gt);
  SEMAT_CHECK(!gt_dir.empty(), IoError,
              "--dataset " << name << ": ground-truth folder '" << (fs::path(root) / spec->gt).string()
                           << "' does not exist; --root must hold the dataset folder");
  out.gt_dir = gt_dir.string();

  if (name == "sim") {
    // SIMD/generated_testset/<category>/alpha/<name>; keys are "category/stem".
    std::vector<fs::path> categories;
    for (const auto& e : fs::directory_iterator(gt_dir, ec))
      if (e.is_directory(ec) && fs::is_directory(e.path() / "alpha", ec)) categories.push_back(e.path());
    std::sort(categories.begin(), categories.end());
    for (const fs::path& c : categories)
      for (const auto& [stem, path] : list_images((c / "alpha").string(), "--dataset sim"))
        out.items.push_back({c.filename().string() + "/" + stem, path});
    SEMAT_CHECK(!out.items.empty(), DataError,
                "--dataset sim: no '<category>/alpha/' images under '" << out.gt_dir
                                                                      << "' (generate the test set with the SIM scripts)");
    return out;
  }

  const auto gts = list_images(out.gt_dir, "--dataset " + name);
  const fs::path image_dir = spec->image ? resolve(root, spec->image) : fs::path();
  if (!image_dir.empty()) {
    // Image-driven like the loaders: one GT per image, and a missing GT is an error.
    out.image_dir = image_dir.string();
    std::vector<std::string> missing;
    for (const auto& [stem, path] : list_images(out.image_dir, "--dataset " + name)) {
      auto it = gts.find(stem);
      if (it == gts.end()) missing.push_back(stem);
      else out.items.push_back({stem, it->second});
    }
    SEMAT_CHECK(missing.empty(), DataError,
                "--dataset " << name << ": " << missing.size() << " image(s) in '" << out.image_dir
                             << "' have no ground truth in '" << out.gt_dir << "', first '" << missing.front()
                             << "'; the dataset copy is incomplete");
  } else {
    for (const auto& [stem, path] : gts) out.items.push_back({stem, path});
  }
  SEMAT_CHECK(!out.items.empty(), DataError,
              "--dataset " << name << ": no ground-truth images in '" << out.gt_dir << "'");
  return out;
}

}  // namespace semat::metrics
