// semat train --config FILE.json --out DIR [--resume DIR] [--device cpu|cuda]
// Trains SEMat's parts of a model started from a plain SAM checkpoint (modules/train).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "semat/core/error.h"
#include "semat/train/train_config.h"
#include "semat/train/trainer.h"

namespace semat::cli {
namespace {

struct TrainArgs {
  std::string config, out, resume, device;
};

// Without --config, a resume continues with the config stored in its checkpoint.
train::TrainConfig config_of_checkpoint(const std::string& resume) {
  const std::string dir = train::resolve_checkpoint_dir(resume);
  const std::string path = (std::filesystem::path(dir) / "state.json").string();
  std::ifstream in(path);
  if (!in) throw IoError("cannot read '" + path + "': the checkpoint is incomplete");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto state = nlohmann::json::parse(ss.str(), nullptr, false);
  if (state.is_discarded() || !state.contains("config"))
    throw CheckpointError("'" + path + "' holds no training config: pass --config FILE.json");
  return train::parse_train_config(state["config"].dump(), path);
}

void run_train(const TrainArgs& a) {
  if (a.config.empty() && a.resume.empty())
    throw ConfigError("semat train needs --config FILE.json (or --resume DIR to continue a run)");
  train::TrainConfig cfg = a.config.empty() ? config_of_checkpoint(a.resume) : train::load_train_config(a.config);
  if (!a.device.empty()) cfg.device = a.device;
  train::TrainOptions opts;
  opts.out_dir = a.out;
  opts.resume = a.resume;
  opts.progress = &std::cerr;
  train::Trainer trainer(cfg, opts);
  if (!a.resume.empty())
    std::cerr << "resuming at iteration " << trainer.iteration() << " of " << cfg.iterations << "\n";
  const train::TrainResult r = trainer.run();
  char buf[256];
  std::snprintf(buf, sizeof buf, "trained iterations %lld..%lld in %.1f s (%.2f it/s)\n",
                static_cast<long long>(r.first_iteration), static_cast<long long>(r.last_iteration),
                r.seconds, r.iterations_per_second);
  std::cout << buf << "log: " << (std::filesystem::path(a.out) / "log.jsonl").string() << "\n"
            << "checkpoint: " << r.last_checkpoint << "\n";
}

}  // namespace

void register_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train SEMat from a SAM checkpoint (JSON config)");
  cmd->add_option("--config", args->config, "training config (see configs/tiny-synthetic.json)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", args->out, "output folder: log.jsonl and checkpoints/")->required();
  cmd->add_option("--resume", args->resume,
                  "continue from a run folder (its latest checkpoint) or a checkpoints/iter_N folder");
  cmd->add_option("--device", args->device, "cpu or cuda[:N] (overrides the config)");
  cmd->callback([args] { run_train(*args); });
}

}  // namespace semat::cli
