// `semat train` and `semat export` as a person runs them: a short run on generated scenes writes
// its logs, plot and checkpoints; the export mattes an image through `semat matte --semat`; bad
// configs and folders fail with one line; a disk that fills up while checkpointing leaves the last
// good checkpoint untouched and the run resumable.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/net.h"
#include "support/cli_test.h"

namespace fs = std::filesystem;

namespace {

const std::string kSamBase = std::string(SEMAT_TEST_DATA) + "/semat_tiny/sam_base_tiny.safetensors";
const std::string kSemat = std::string(SEMAT_TEST_DATA) + "/semat_tiny/semat_tiny.safetensors";

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

class CliTrain : public semat::test::CliTest {
 protected:
  // The shipped tiny config, shortened for CI.
  fs::path write_config(const std::string& name, int iterations, int checkpoint_every, int visual_every = 2) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << R"({"sam_checkpoint": ")" << kSamBase << R"(", "iterations": )" << iterations
                     << R"(, "batch_size": 1, "lr": 1e-3, "warmup_iterations": 2, "grad_clip": 1.0,
      "checkpoint_every": )" << checkpoint_every << R"(, "visual_every": )" << visual_every
                     << R"(, "keep_checkpoints": 0, "print_every": 1, "plot_every": 2,
      "data": {"type": "synthetic", "samples": 4, "size": 256}})";
    return p;
  }

};

TEST_F(CliTrain, TrainsExportsAndTheExportMattes) {
  const fs::path cfg = write_config("tiny.json", 3, 2);
  const auto r = run("train --config " + cfg.string() + " --out " + (dir_ / "run").string() + " --progress log");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("iter 3/3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ETA"), std::string::npos);
  EXPECT_NE(r.out.find("checkpoint: "), std::string::npos) << r.out;
  const fs::path run_dir = dir_ / "run";
  EXPECT_EQ(count_lines(slurp(run_dir / "log.jsonl")), 3);
  EXPECT_EQ(count_lines(slurp(run_dir / "log.csv")), 4);
  EXPECT_FALSE(cv::imread((run_dir / "loss_plot.png").string()).empty());
  EXPECT_TRUE(fs::exists(run_dir / "visuals" / "iter_00000002.png"));
  EXPECT_TRUE(fs::exists(run_dir / "checkpoints" / "iter_00000002" / "weights.safetensors"));
  EXPECT_EQ(slurp(run_dir / "checkpoints" / "latest"), "iter_00000003\n");

  const fs::path exported = dir_ / "semat.safetensors";
  const auto e = run("export --checkpoint " + run_dir.string() + " --out " + exported.string() + " --json");
  ASSERT_EQ(e.code, 0) << e.err;
  const auto j = nlohmann::json::parse(e.out);
  EXPECT_EQ(j["iteration"], 3);
  EXPECT_EQ(j["model"], "semat-tiny");

  cv::Mat img(150, 200, CV_8UC3, cv::Scalar(40, 90, 30));
  cv::circle(img, {100, 75}, 40, cv::Scalar(200, 210, 230), cv::FILLED);
  cv::imwrite((dir_ / "img.png").string(), img);
  const auto m = run("matte " + (dir_ / "img.png").string() + " --box 50,30,150,120 --semat " + exported.string() +
                     " --out " + (dir_ / "out").string());
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_EQ(cv::imread((dir_ / "out" / "alpha.png").string(), cv::IMREAD_UNCHANGED).size(), img.size());
}

TEST_F(CliTrain, BadInputFailsWithOneLineNamingIt) {
  // Unknown key.
  std::ofstream(dir_ / "bad.json") << R"({"iterations": 3, "learning_rate": 1e-4})";
  auto r = run("train --config " + (dir_ / "bad.json").string() + " --out " + (dir_ / "o1").string());
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("'learning_rate'"), std::string::npos) << r.err;
  // A SEMat checkpoint where the config expects a plain SAM one.
  std::ofstream(dir_ / "wrong_ckpt.json") << R"({"sam_checkpoint": ")" << kSemat << R"(", "iterations": 2})";
  r = run("train --config " + (dir_ / "wrong_ckpt.json").string() + " --out " + (dir_ / "o2").string());
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("SEMat"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "o2" / "checkpoints"));
  // A composition dataset whose foreground has no alpha.
  fs::create_directories(dir_ / "ds" / "fg");
  fs::create_directories(dir_ / "ds" / "alpha");
  fs::create_directories(dir_ / "ds" / "bg");
  cv::Mat px(32, 32, CV_8UC3, cv::Scalar(1, 2, 3));
  cv::imwrite((dir_ / "ds" / "fg" / "lonely.png").string(), px);
  cv::imwrite((dir_ / "ds" / "bg" / "b.png").string(), px);
  std::ofstream(dir_ / "ds.json") << R"({"sam_checkpoint": ")" << kSamBase << R"(", "iterations": 2,
    "data": {"size": 256, "datasets": [{"type": "composition", "fg": "ds/fg", "alpha": "ds/alpha", "bg": "ds/bg"}]}})";
  r = run("train --config " + (dir_ / "ds.json").string() + " --out " + (dir_ / "o3").string());
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("lonely"), std::string::npos) << r.err;
  // Export of something that is not a training run.
  r = run("export --checkpoint " + dir_.string() + " --out " + (dir_ / "x.safetensors").string());
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "x.safetensors"));
}

// RLIMIT_FSIZE (with SIGXFSZ ignored) makes every write past the limit fail with EFBIG, the way a
// full disk fails them: the checkpoint files of the tiny model exceed it, the logs do not.
TEST_F(CliTrain, DiskFullWhileCheckpointingKeepsTheLastGoodCheckpoint) {
  const fs::path cfg = write_config("four.json", 4, 2, 0);
  const fs::path run_dir = dir_ / "run";
  // Iterations 1-2 and the checkpoint at 2 with room to spare.
  auto r = run("train --config " + write_config("two.json", 2, 2, 0).string() + " --out " + run_dir.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path good = run_dir / "checkpoints" / "iter_00000002";
  const std::string weights = slurp(good / "weights.safetensors"), optim = slurp(good / "optimizer.pt"),
                    state = slurp(good / "state.json");
  ASSERT_GT(weights.size(), 64u * 1024);

  // Continue to 4 on a "disk" that takes no file over 64 KiB (ulimit -f counts 512-byte blocks).
  const std::string limited = "trap '' XFSZ; ulimit -f 128; exec " + std::string(SEMAT_BINARY);
  r = semat::test::run_cli(limited, "train --config " + cfg.string() + " --out " + run_dir.string() +
                                        " --resume " + run_dir.string() + " --progress off",
                           dir_);
  EXPECT_NE(r.code, 0);
  // One error line (after the "resuming at" note), naming the checkpoint it kept.
  const std::string last_line = r.err.substr(r.err.rfind('\n', r.err.size() - 2) + 1);
  EXPECT_NE(last_line.find("cannot write checkpoint"), std::string::npos) << r.err;
  EXPECT_NE(last_line.find("iter_00000002' is intact"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 2) << r.err;
  // The good checkpoint is byte-identical, `latest` still names it, no temporary is left.
  EXPECT_EQ(slurp(good / "weights.safetensors"), weights);
  EXPECT_EQ(slurp(good / "optimizer.pt"), optim);
  EXPECT_EQ(slurp(good / "state.json"), state);
  EXPECT_EQ(slurp(run_dir / "checkpoints" / "latest"), "iter_00000002\n");
  for (const auto& e : fs::directory_iterator(run_dir / "checkpoints"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();

  // With space again the run resumes from it and finishes.
  r = run("train --config " + cfg.string() + " --out " + run_dir.string() + " --resume " + run_dir.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming at iteration 2"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(run_dir / "checkpoints" / "latest"), "iter_00000004\n");
  EXPECT_EQ(count_lines(slurp(run_dir / "log.jsonl")), 4);
}

// Data parallel on this CPU with Gloo: two ranks through --nproc. At every checkpoint the ranks
// compare parameter sums, so a step that skipped the gradient all-reduce (the ranks see
// different samples) would stop the run as "diverged".
TEST_F(CliTrain, TwoRanksTrainDataParallel) {
  const fs::path cfg = write_config("ddp.json", 4, 2, 0);
  const auto r = run("train --config " + cfg.string() + " --out " + (dir_ / "run").string() +
                     " --nproc 2 --progress log");
  ASSERT_EQ(r.code, 0) << r.err;
  // Rank 0 alone reports and writes.
  EXPECT_EQ(static_cast<int>(std::count(r.err.begin(), r.err.end(), '\n')), 4) << r.err;
  EXPECT_NE(r.err.find("iter 4/4"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(slurp(dir_ / "run" / "log.jsonl")), 4);
  EXPECT_EQ(slurp(dir_ / "run" / "checkpoints" / "latest"), "iter_00000004\n");
}

// Ranks started by hand (torchrun-style environment) with different learning rates: the replicas
// drift apart and both ranks stop at the first checkpoint naming the problem.
TEST_F(CliTrain, RanksThatDriftApartAreStopped) {
  const fs::path a = write_config("a.json", 4, 2, 0);
  std::string text = slurp(a);
  text.replace(text.find("\"lr\": 1e-3"), 10, "\"lr\": 3e-3");
  std::ofstream(dir_ / "b.json") << text;
  // `timeout`: a rank that never meets the other must not hang the suite.
  const std::string env = "timeout 120 env WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(semat::free_loopback_port());
  const std::string cmd = env + " RANK=1 LOCAL_RANK=1 " + SEMAT_BINARY + " train --config " + (dir_ / "b.json").string() +
                          " --out " + (dir_ / "run").string() + " 2>" + (dir_ / "rank1.err").string() + " & " + env +
                          " RANK=0 LOCAL_RANK=0 " + SEMAT_BINARY;
  const auto r = semat::test::run_cli(cmd, "train --config " + a.string() + " --out " + (dir_ / "run").string(), dir_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("replicas diverged at iteration 2"), std::string::npos) << r.err;
  for (int i = 0; i < 100 && slurp(dir_ / "rank1.err").find("diverged") == std::string::npos; ++i) ::usleep(100000);
  EXPECT_NE(slurp(dir_ / "rank1.err").find("replicas diverged at iteration 2"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "run" / "checkpoints" / "iter_00000002"));
}

}  // namespace
