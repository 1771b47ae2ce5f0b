// semat build-dataset --annotations ANN.json --images DIR --out DIR [--panoptic-masks DIR]
//     [--backend closed-form|semat --semat CKPT --sam CKPT] [--tau 0.8] [--overlap ioa|iou]
//     [--accessories LIST] [--eta 12] [--min-score 95] [--shard K/N] [--jobs N] [--limit N]
//     [--export-concat]
// semat merge-index --out DIR INPUT...
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/data/builder.h"
#ifdef SEMAT_WITH_MODELS
#include <mutex>

#include "semat/models/semat_predictor.h"
#endif

namespace semat::cli {
namespace {

struct BuildArgs {
  data::BuildOptions options;
  std::string backend = "closed-form";
  std::string semat_ckpt, sam_ckpt;
  std::string overlap = "ioa";
  std::string accessories;
  std::string shard = "0/1";
  std::string progress = "auto";
  bool json = false;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

#ifdef SEMAT_WITH_MODELS
// SEMat as the mask-to-matte backend, prompted with the person's box as in the paper; the
// trimap made by the mask-to-matte rule is not an input of the network.
class SematSource : public data::AlphaSource {
 public:
  SematSource(std::shared_ptr<models::SematPredictor> model, std::shared_ptr<std::mutex> lock)
      : model_(std::move(model)), lock_(std::move(lock)) {}
  std::string name() const override { return "semat"; }
  cv::Mat alpha(const data::AlphaRequest& r) override {
    std::lock_guard<std::mutex> guard(*lock_);
    return model_->predict(r.image, {r.box}).at(0).alpha;
  }

 private:
  std::shared_ptr<models::SematPredictor> model_;
  std::shared_ptr<std::mutex> lock_;
};
#endif

data::AlphaSourceFactory make_backend(const BuildArgs& a) {
  if (a.backend == "closed-form") {
    SEMAT_CHECK(a.semat_ckpt.empty() && a.sam_ckpt.empty(), ConfigError,
                "--semat/--sam are only used with --backend semat");
    return [] { return data::make_closed_form_source(); };
  }
  SEMAT_CHECK(!a.semat_ckpt.empty(), ConfigError,
              "--backend semat needs --semat CKPT (a SEMat checkpoint; add --sam CKPT when it "
              "lacks the SAM weights)");
#ifdef SEMAT_WITH_MODELS
  // One model shared by the workers: a second copy would double the memory (1.3 GB for ViT-L)
  // while LibTorch already uses every core inside one forward pass.
  auto model = std::make_shared<models::SematPredictor>(a.semat_ckpt, a.sam_ckpt);
  auto lock = std::make_shared<std::mutex>();
  return [model, lock]() -> std::unique_ptr<data::AlphaSource> {
    return std::make_unique<SematSource>(model, lock);
  };
#else
  throw ConfigError(
      "--backend semat needs a build with the SEMat model (LibTorch), which this semat lacks; "
      "install libtorch-dev and rebuild, or use --backend closed-form");
#endif
}

data::ProgressMode parse_progress(const std::string& s) {
  if (s == "auto") return data::ProgressMode::kAuto;
  if (s == "bar") return data::ProgressMode::kBar;
  if (s == "log") return data::ProgressMode::kLog;
  return data::ProgressMode::kOff;  // CLI11 already restricted the values
}

void run_build(BuildArgs& a) {
  data::BuildOptions& o = a.options;
  o.fusion.overlap = data::parse_overlap_mode(a.overlap);
  o.shard = data::parse_shard(a.shard);
  o.accessories = split_list(a.accessories);
  SEMAT_CHECK(a.accessories.empty() || !o.accessories.empty(), ConfigError,
              "--accessories '" << a.accessories
                                << "' names no category; give comma-separated COCO names, e.g. "
                                   "tie,handbag,backpack");
  o.progress = parse_progress(a.progress);
  const data::AlphaSourceFactory backend = make_backend(a);
  const nlohmann::json s = data::build_dataset(o, backend);
  if (a.json) {
    std::cout << s.dump() << '\n';
    return;
  }
  std::cout << "semat: kept " << s["kept"] << " of " << s["persons"] << " person instances in "
            << o.out << "/ (" << s["kept_new"] << " new, " << s["resumed"] << " resumed, "
            << s["fused_accessories"] << " accessories fused, " << s["seconds"].get<double>()
            << " s)\n";
  for (const auto& [reason, n] : s["skipped"].items())
    std::cout << "  skipped " << reason << ": " << n << '\n';
}

}  // namespace

void register_build_dataset(CLI::App& app) {
  auto a = std::make_shared<BuildArgs>();
  data::BuildOptions& o = a->options;
  CLI::App* cmd = app.add_subcommand(
      "build-dataset",
      "COCO-Matting builder: person mattes from COCO masks (accessory fusion + mask-to-matte)");
  cmd->add_option("--annotations", o.annotations, "COCO instances or panoptic (COCONut) JSON")
      ->required();
  cmd->add_option("--images", o.images, "folder of the images named by file_name")->required();
  cmd->add_option("--out", o.out, "output folder (alpha/, trimap/, index.jsonl, summary.json)")
      ->required();
  cmd->add_option("--panoptic-masks", o.panoptic_masks,
                  "folder of the panoptic segment PNGs (panoptic annotations only)");
  cmd->add_option("--backend", a->backend, "alpha backend")
      ->check(CLI::IsMember({"closed-form", "semat"}))
      ->capture_default_str();
  cmd->add_option("--semat", a->semat_ckpt, "SEMat checkpoint (--backend semat)");
  cmd->add_option("--sam", a->sam_ckpt, "SAM checkpoint (--backend semat)");
  cmd->add_option("--tau", o.fusion.tau, "box overlap an accessory must exceed to be fused")
      ->capture_default_str();
  cmd->add_option("--overlap", a->overlap,
                  "ioa: intersection over the accessory's box; iou: the paper's literal IoU")
      ->check(CLI::IsMember({"ioa", "iou"}))
      ->capture_default_str();
  cmd->add_option("--accessories", a->accessories,
                  "comma-separated category names fused into people (default: COCO accessories "
                  "plus carried/worn things)");
  cmd->add_option("--eta", o.eta, "mask-to-matte area divisor: omega = sqrt(area / eta)")
      ->capture_default_str();
  cmd->add_option("--min-score", o.min_score,
                  "keep mattes whose IoU x 100 with the fused mask is at least this")
      ->capture_default_str();
  cmd->add_option("--shard", a->shard, "build shard K of N (0-based K), split by image id")
      ->capture_default_str();
  cmd->add_option("--jobs", o.jobs, "worker threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--limit", o.limit, "at most N person instances (0 = all)")
      ->capture_default_str();
  cmd->add_flag("--export-concat", o.export_concat,
                "also write SEMat_concat/ (image | alpha | trimap), the official loader's layout");
  cmd->add_option("--progress", a->progress, "auto (bar on a terminal), bar, log or off")
      ->check(CLI::IsMember({"auto", "bar", "log", "off"}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "print the summary as JSON on stdout");
  cmd->callback([a] { run_build(*a); });

  auto m = std::make_shared<data::MergeOptions>();
  auto mjson = std::make_shared<bool>(false);
  CLI::App* merge = app.add_subcommand(
      "merge-index", "Merge the index.jsonl files of build-dataset shards into one");
  merge->add_option("inputs", m->inputs, "build-dataset --out folders or index files")->required();
  merge->add_option("--out", m->out, "folder for the merged index.jsonl and summary.json")
      ->required();
  merge->add_flag("--verify", m->verify, "drop records whose PNG files are missing or damaged");
  merge->add_flag("--json", *mjson, "print the merged summary as JSON on stdout");
  merge->callback([m, mjson] {
    const nlohmann::json s = data::merge_indexes(*m);
    if (*mjson) {
      std::cout << s.dump() << '\n';
      return;
    }
    std::cout << "semat: merged " << s["inputs"].size() << " indexes into " << m->out
              << "/index.jsonl: " << s["kept"] << " instances (" << s["duplicates"]
              << " duplicates, " << s["dropped_unverified"] << " dropped)\n";
  });
}

}  // namespace semat::cli
