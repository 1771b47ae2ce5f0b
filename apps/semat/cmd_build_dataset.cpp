// semat build-dataset --annotations ANN.json --images DIR --out DIR [--panoptic-masks DIR]
//     [--backend closed-form|semat] [engine flags: --semat CKPT --sam CKPT --refine ...]
//     [--tau 0.8] [--overlap ioa|iou]
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
#include "engine_flags.h"
#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/data/builder.h"

namespace semat::cli {
namespace {

struct BuildArgs {
  data::BuildOptions options;
  std::string backend;  ///< historical alias: closed-form = --alpha closed-form, semat = a model alpha
  engine::EngineSpec engine;
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

// --backend predates the engine flags; it still works and must agree with them.
engine::EngineSpec engine_spec(const BuildArgs& a) {
  engine::EngineSpec spec = a.engine;
  if (a.backend == "closed-form") {
    SEMAT_CHECK(spec.semat.empty() && spec.sam.empty(), ConfigError,
                "--semat/--sam are only used with --backend semat");
    SEMAT_CHECK(spec.alpha == "auto" || spec.alpha == "closed-form", ConfigError,
                "--backend closed-form contradicts --alpha " << spec.alpha);
    spec.alpha = "closed-form";
  } else if (a.backend == "semat") {
    SEMAT_CHECK(!spec.semat.empty(), ConfigError,
                "--backend semat needs --semat CKPT (a SEMat checkpoint; add --sam CKPT when it "
                "lacks the SAM weights)");
  }
  return spec;
}

data::ProgressMode parse_progress(const std::string& s) {
  if (s == "auto") return data::ProgressMode::kAuto;
  if (s == "bar") return data::ProgressMode::kBar;
  if (s == "log") return data::ProgressMode::kLog;
  return data::ProgressMode::kOff;  // CLI11 already restricted the values
}

void run_build(BuildArgs& a) {
  const engine::EngineSpec spec = engine_spec(a);
  engine::resolve(spec);  // flag contradictions first, before any file is read
  data::BuildOptions& o = a.options;
  o.fusion.overlap = data::parse_overlap_mode(a.overlap);
  o.shard = data::parse_shard(a.shard);
  o.accessories = split_list(a.accessories);
  SEMAT_CHECK(a.accessories.empty() || !o.accessories.empty(), ConfigError,
              "--accessories '" << a.accessories
                                << "' names no category; give comma-separated COCO names, e.g. "
                                   "tie,handbag,backpack");
  o.progress = parse_progress(a.progress);
  const nlohmann::json s = data::build_dataset(o, spec);
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
  cmd->add_option("--backend", a->backend,
                  "alpha stage, the historical flag: closed-form, or semat (needs --semat)")
      ->check(CLI::IsMember({"closed-form", "semat"}));
  add_engine_flags(cmd, a->engine);
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
