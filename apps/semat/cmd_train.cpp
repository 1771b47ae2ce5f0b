// semat train --config FILE.json --out DIR [--resume DIR] [--device cpu|cuda] [--progress MODE]
// semat export --checkpoint DIR --out FILE.safetensors [--sam SAM_CKPT] [--json]
// Trains SEMat's parts of a model started from a plain SAM checkpoint (modules/train), and turns
// a training checkpoint into a SEMat checkpoint that `semat matte --semat` loads.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "semat/core/error.h"
#include "semat/core/net.h"
#include "semat/train/train_config.h"
#include "semat/train/trainer.h"

namespace semat::cli {
namespace {

struct TrainArgs {
  std::string config, out, resume, device, progress = "auto";
  int nproc = 1;
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

// --nproc N: this machine runs N ranks (one per GPU, or CPU processes), as torchrun would: the
// same command with RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT set. When one rank
// fails the others are stopped (they would wait for it in the next all-reduce).
void launch(const TrainArgs& a) {
  std::vector<std::string> args = {"semat", "train", "--out", a.out, "--progress", a.progress};
  for (const auto& [flag, value] : {std::pair<const char*, std::string>{"--config", a.config},
                                    {"--resume", a.resume}, {"--device", a.device}})
    if (!value.empty()) args.insert(args.end(), {flag, value});
  std::string port;
  try {
    port = std::to_string(free_loopback_port());
  } catch (const IoError& e) {
    throw StateError(std::string(e.what()) + ": --nproc needs a free port; set MASTER_PORT and start the ranks yourself");
  }
  std::vector<pid_t> pids;
  for (int r = 0; r < a.nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) throw StateError("cannot start rank " + std::to_string(r) + ": fork failed");
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(a.nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", port.c_str(), 1);
      std::vector<char*> argv;
      for (auto& s : args) argv.push_back(s.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::perror("semat: exec");
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  int failed_rank = -1, failed_status = 0;
  for (size_t left = pids.size(); left > 0; --left) {
    int status = 0;
    const pid_t pid = ::wait(&status);
    if (pid < 0) break;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && failed_rank < 0) {
      failed_rank = static_cast<int>(std::find(pids.begin(), pids.end(), pid) - pids.begin());
      failed_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      for (pid_t p : pids)
        if (p != pid) ::kill(p, SIGTERM);
    }
  }
  if (failed_rank >= 0)
    throw StateError("rank " + std::to_string(failed_rank) + " of " + std::to_string(a.nproc) +
                     " stopped with status " + std::to_string(failed_status) +
                     " (its message is above); the other ranks were stopped");
}

void run_train(const TrainArgs& a) {
  if (a.nproc > 1) {
    launch(a);
    return;
  }
  if (a.config.empty() && a.resume.empty())
    throw ConfigError("semat train needs --config FILE.json (or --resume DIR to continue a run)");
  train::TrainConfig cfg = a.config.empty() ? config_of_checkpoint(a.resume) : train::load_train_config(a.config);
  if (!a.device.empty()) cfg.device = a.device;
  train::TrainOptions opts;
  opts.out_dir = a.out;
  opts.resume = a.resume;
  opts.distributed = train::distributed_env_from_environment();
  const bool rank0 = opts.distributed.rank == 0;
  opts.progress = rank0 ? &std::cerr : nullptr;
  opts.progress_style = a.progress == "bar"   ? train::ProgressStyle::kBar
                        : a.progress == "log" ? train::ProgressStyle::kLog
                        : a.progress == "off" ? train::ProgressStyle::kOff
                        : ::isatty(STDERR_FILENO) ? train::ProgressStyle::kBar
                                                  : train::ProgressStyle::kLog;
  train::Trainer trainer(cfg, opts);
  if (!a.resume.empty() && rank0)
    std::cerr << "resuming at iteration " << trainer.iteration() << " of " << cfg.iterations << "\n";
  const train::TrainResult r = trainer.run();
  if (!rank0) return;
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
  cmd->add_option("--nproc", args->nproc,
                  "ranks to run on this machine, data parallel (one per GPU with --device cuda)")
      ->check(CLI::Range(1, 64));
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
