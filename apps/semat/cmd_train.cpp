// semat train --config FILE.json --out DIR [--resume DIR] [--device cpu|cuda] [--progress MODE]
// semat export --checkpoint DIR --out FILE.safetensors [--sam SAM_CKPT] [--json]
// Trains SEMat's parts of a model started from a plain SAM checkpoint (modules/train), and turns
// a training checkpoint into a SEMat checkpoint that `semat matte --semat` loads.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "semat/core/error.h"
#include "semat/train/train_config.h"
#include "semat/train/trainer.h"

namespace semat::cli {
namespace {

struct TrainArgs {
  std::string config, out, resume, device, progress = "auto";
};

struct ExportArgs {
  std::string checkpoint, out, sam;
  bool json = false;
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
  opts.progress_style = a.progress == "bar"   ? train::ProgressStyle::kBar
                        : a.progress == "log" ? train::ProgressStyle::kLog
                        : a.progress == "off" ? train::ProgressStyle::kOff
                        : ::isatty(STDERR_FILENO) ? train::ProgressStyle::kBar
                                                  : train::ProgressStyle::kLog;
  train::Trainer trainer(cfg, opts);
  if (!a.resume.empty())
    std::cerr << "resuming at iteration " << trainer.iteration() << " of " << cfg.iterations << "\n";
  const train::TrainResult r = trainer.run();
  char buf[256];
  std::snprintf(buf, sizeof buf, "trained iterations %lld..%lld in %.1f s (%.2f it/s)\n",
                static_cast<long long>(r.first_iteration), static_cast<long long>(r.last_iteration),
                r.seconds, r.iterations_per_second);
  const std::filesystem::path out(a.out);
  std::cout << buf << "log: " << (out / "log.jsonl").string() << ", " << (out / "log.csv").string() << "\n"
            << "plot: " << (out / "loss_plot.png").string() << "\n"
            << "checkpoint: " << r.last_checkpoint << "\n"
            << "export it with: semat export --checkpoint " << r.last_checkpoint << " --out semat.safetensors\n";
}

void run_export(const ExportArgs& a) {
  const train::ExportResult r = train::export_checkpoint(a.checkpoint, a.out, a.sam);
  if (a.json) {
    std::cout << nlohmann::json{{"path", r.path}, {"model", r.model}, {"iteration", r.iteration},
                                {"tensors", r.tensors}, {"bytes", r.bytes}}
                     .dump()
              << "\n";
    return;
  }
  std::cout << "wrote " << r.path << ": " << r.model << " at iteration " << r.iteration << ", " << r.tensors
            << " tensors, " << r.bytes / 1048576.0 << " MiB\n"
            << "use it with: semat matte IMAGE --box X0,Y0,X1,Y1 --semat " << r.path << "\n";
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
  cmd->add_option("--progress", args->progress, "auto (bar on a terminal, else lines), bar, log or off")
      ->check(CLI::IsMember({"auto", "bar", "log", "off"}));
  cmd->callback([args] { run_train(*args); });

  auto eargs = std::make_shared<ExportArgs>();
  CLI::App* ecmd = app.add_subcommand("export", "Write a self-contained SEMat checkpoint from a training checkpoint");
  ecmd->add_option("--checkpoint", eargs->checkpoint, "a checkpoints/iter_N folder or a run folder (its latest)")
      ->required();
  ecmd->add_option("--out", eargs->out, "the SEMat checkpoint to write (.safetensors)")->required();
  ecmd->add_option("--sam", eargs->sam, "SAM checkpoint, when the one in the training config has moved");
  ecmd->add_flag("--json", eargs->json, "print the result as JSON");
  ecmd->callback([eargs] { run_export(*eargs); });
}

}  // namespace semat::cli
