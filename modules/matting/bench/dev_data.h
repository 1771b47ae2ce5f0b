// Locating the development matting data (real photos with ground-truth alpha) for benchmarks.
// Tests never use it. $SEMAT_DEV_DATA overrides the default ../shared/data/matting_dev.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace semat::bench {

struct DevSample {
  std::string set, name, image, gt;
  std::vector<std::string> trimaps;  // trimap1, trimap2 (alphamatting) or trimap (Composition-1k)
};

inline std::string dev_data_root() {
  if (const char* env = std::getenv("SEMAT_DEV_DATA")) return env;
  return std::string(SEMAT_SOURCE_DIR) + "/../shared/data/matting_dev";
}

inline std::vector<DevSample> dev_samples() {
  namespace fs = std::filesystem;
  std::vector<DevSample> out;
  const fs::path root = dev_data_root();
  const fs::path am = root / "alphamatting_lowres_dev";
  for (int i = 1; i <= 5; ++i) {
    const std::string n = "GT0" + std::to_string(i) + ".png";
    if (!fs::exists(am / "input" / n)) continue;
    out.push_back({"alphamatting", n, (am / "input" / n).string(), (am / "gt" / n).string(),
                   {(am / "trimap1" / n).string(), (am / "trimap2" / n).string()}});
  }
  const fs::path c1k = root / "composition1k_crops320_foamliu";
  for (int i = 0; i < 10; ++i) {
    const std::string n = std::to_string(i) + ".png";
    if (!fs::exists(c1k / "image" / n)) continue;
    out.push_back({"comp1k", n, (c1k / "image" / n).string(), (c1k / "gt" / n).string(),
                   {(c1k / "trimap" / n).string()}});
  }
  return out;
}

}  // namespace semat::bench
