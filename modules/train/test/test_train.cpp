// The SEMat trainer on the tiny fixture's shapes and generated scenes: configs, data, the
// schedule, learning (overfitting 4 scenes), frozen SAM weights, and exact resume on the CPU.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/train/synthetic_data.h"
#include "semat/train/train_config.h"
#include "semat/train/trainer.h"

namespace semat::train {
namespace {

namespace fs = std::filesystem;
const std::string kSamBase = std::string(SEMAT_TEST_DATA) + "/semat_tiny/sam_base_tiny.safetensors";

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("semat_train_test_" + name);
  fs::remove_all(d);
  return d;
}

TrainConfig tiny_config(int64_t iterations) {
  TrainConfig c;
  c.sam_checkpoint = kSamBase;
  c.iterations = iterations;
  c.batch_size = 1;
  c.lr = 1e-3;
  c.warmup_iterations = 5;
  c.grad_clip = 1.0;
  c.checkpoint_every = 1000;
  c.print_every = 0;
  c.data.samples = 4;
  c.data.size = 256;
  return c;
}

std::string config_error(const std::string& text) {
  try {
    parse_train_config(text, "cfg.json");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(TrainConfig, RejectsUnknownKeysAndWrongTypesNamingTheKey) {
  EXPECT_NE(config_error(R"({"iterations": 10, "learning_rate": 1})").find("'learning_rate'"), std::string::npos);
  EXPECT_NE(config_error(R"({"lr": "fast"})").find("'lr' must be a number"), std::string::npos);
  EXPECT_NE(config_error(R"({"iterations": 2.5})").find("'iterations' must be an integer"), std::string::npos);
  EXPECT_NE(config_error(R"({"loss": {"reg": 1}})").find("'loss.reg'"), std::string::npos);
  EXPECT_NE(config_error(R"({"data": {"samples": "4"}})").find("'data.samples'"), std::string::npos);
  EXPECT_NE(config_error(R"({"data": {"type": "coco"}})").find("'data.type'"), std::string::npos);
  EXPECT_NE(config_error(R"({"lr_steps": [[0.5]]})").find("'lr_steps'"), std::string::npos);
  EXPECT_NE(config_error(R"({"batch_size": 0})").find("'batch_size'"), std::string::npos);
  EXPECT_NE(config_error(R"([1, 2])").find("JSON object"), std::string::npos);
  EXPECT_NE(config_error("{nope").find("not valid JSON"), std::string::npos);
  EXPECT_THROW(load_train_config("/nonexistent/cfg.json"), IoError);
}

TEST(TrainConfig, RoundTripsAndResolvesTheCheckpointAgainstTheConfigFolder) {
  const TrainConfig c = parse_train_config(R"({"sam_checkpoint": "sam.safetensors", "lr": 0.001,
      "lr_steps": [[0.6, 0.3]], "loss": {"reg_weight": 0.5}, "data": {"samples": 4}})", "x", "/runs/a");
  EXPECT_EQ(c.sam_checkpoint, "/runs/a/sam.safetensors");
  EXPECT_DOUBLE_EQ(c.lr, 1e-3);
  EXPECT_DOUBLE_EQ(c.loss.reg, 0.5);
  EXPECT_EQ(c.data.samples, 4);
  const TrainConfig d = parse_train_config(train_config_json(c), "again");
  EXPECT_EQ(train_config_json(d), train_config_json(c));
}

TEST(TrainConfig, ShippedTinyConfigParses) {
  const TrainConfig c = load_train_config(std::string(SEMAT_SOURCE_DIR) + "/configs/tiny-synthetic.json");
  EXPECT_TRUE(fs::exists(c.sam_checkpoint)) << c.sam_checkpoint;
  EXPECT_EQ(c.data.samples, 4);
}

TEST(TrainConfig, WarmUpThenStepDecay) {
  TrainConfig c;  // paper defaults: 5e-5, 250 warm-up, x0.5 at 50%, x0.2 at 75% of 60k
  EXPECT_DOUBLE_EQ(c.lr_at(0), 5e-5 / 250);
  EXPECT_DOUBLE_EQ(c.lr_at(124), 5e-5 * 125 / 250);
  EXPECT_DOUBLE_EQ(c.lr_at(249), 5e-5);
  EXPECT_DOUBLE_EQ(c.lr_at(29999), 5e-5);
  EXPECT_DOUBLE_EQ(c.lr_at(30000), 2.5e-5);
  EXPECT_DOUBLE_EQ(c.lr_at(45000), 1e-5);
  EXPECT_DOUBLE_EQ(c.lr_at(59999), 1e-5);
}

TEST(SyntheticData, DeterministicPerSeedWithValidTrimapAndBox) {
  SyntheticDataConfig dc;
  dc.samples = 4;
  dc.size = 128;
  const SyntheticDataset a(dc, 7), b(dc, 7), c(dc, 8);
  const Sample s = a.get(1), t = b.get(1), u = c.get(1), wrap = a.get(5);
  EXPECT_EQ(cv::norm(s.image, t.image, cv::NORM_INF), 0);
  EXPECT_EQ(cv::norm(s.trimap, t.trimap, cv::NORM_INF), 0);
  EXPECT_GT(cv::norm(s.image, u.image, cv::NORM_L1), 0);
  EXPECT_EQ(cv::norm(s.alpha, wrap.alpha, cv::NORM_INF), 0);  // same scene, new augmentation
  int unknown = 0, fg = 0, bg = 0;
  for (int y = 0; y < 128; ++y)
    for (int x = 0; x < 128; ++x) {
      const float tv = s.trimap.at<float>(y, x), av = s.alpha.at<float>(y, x);
      ASSERT_TRUE(tv == 0.0f || tv == 0.5f || tv == 1.0f);
      unknown += tv == 0.5f, fg += tv == 1.0f, bg += tv == 0.0f;
      // Known regions agree with the true alpha.
      if (tv == 1.0f) {
        ASSERT_EQ(av, 1.0f);
      }
      if (tv == 0.0f) {
        ASSERT_EQ(av, 0.0f);
      }
    }
  EXPECT_GT(unknown, 0);
  EXPECT_GT(fg, 0);
  EXPECT_GT(bg, 0);
  const cv::Rect r = cv::boundingRect(s.alpha > 0.0f);
  EXPECT_NEAR(s.box[0], r.x, 0.1 * r.width + 1e-9);
  EXPECT_NEAR(s.box[2], r.x + r.width, 0.1 * r.width + 1e-9);
  EXPECT_LT(s.box[0], s.box[2]);
  EXPECT_LT(s.box[1], s.box[3]);
}

// The issue's bar is a >= 70% drop within 300 iterations of configs/tiny-synthetic.json (batch
// 2; a manual run gets there in about 60). A CI test gets 24 iterations of batch 1 (~14 s), so
// it asks for a proportionate 35% drop of the mean loss over the 4 scenes.
TEST(Trainer, OverfitsFourScenes) {
  TrainConfig c = tiny_config(24);
  c.lr = 2e-3;  // twice the shipped config's, to see the fall within the short run
  TrainOptions o;
  o.out_dir = fresh_dir("overfit").string();
  const TrainResult r = train(c, o);
  ASSERT_EQ(r.losses.size(), 24u);
  const double first = (r.losses[0] + r.losses[1] + r.losses[2] + r.losses[3]) / 4;
  const double last = (r.losses[20] + r.losses[21] + r.losses[22] + r.losses[23]) / 4;
  std::cerr << "overfit: mean loss of the first 4 iterations " << first << ", last 4 " << last << " (-"
            << 100 * (1 - last / first) << "%), " << r.iterations_per_second << " it/s\n";
  EXPECT_LT(last, 0.65 * first);
  // One JSON line per iteration with every component.
  std::ifstream log(fs::path(o.out_dir) / "log.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    ++lines;
    for (const char* key : {"\"iter\"", "\"loss\"", "\"matting\"", "\"unknown_l1\"", "\"known_l1\"",
                            "\"gradient\"", "\"laplacian\"", "\"reg\"", "\"trimap\"", "\"lr\""})
      ASSERT_NE(line.find(key), std::string::npos) << key << " missing in " << line;
  }
  EXPECT_EQ(lines, 24);
}

TEST(Trainer, FrozenSamWeightsStayBitIdentical) {
  TrainConfig c = tiny_config(3);
  TrainOptions o;
  o.out_dir = fresh_dir("frozen").string();
  Trainer t(c, o);
  const auto frozen0 = t.frozen_weights();
  const auto trained0 = t.trained_weights();
  t.run();
  const auto frozen1 = t.frozen_weights();
  ASSERT_EQ(frozen0.size(), frozen1.size());
  ASSERT_GT(frozen0.size(), 10u);
  for (size_t i = 0; i < frozen0.size(); ++i) {
    EXPECT_EQ(frozen0[i].name, frozen1[i].name);
    EXPECT_TRUE(frozen0[i].bytes == frozen1[i].bytes) << frozen0[i].name;
  }
  // ...while SEMat's parts did train.
  const auto trained1 = t.trained_weights();
  size_t changed = 0;
  for (size_t i = 0; i < trained0.size(); ++i) changed += trained0[i].bytes != trained1[i].bytes;
  EXPECT_GT(changed, trained0.size() / 2);
  // Checkpoint layout.
  const fs::path ck = fs::path(o.out_dir) / "checkpoints" / "iter_00000003";
  EXPECT_TRUE(fs::exists(ck / "weights.safetensors"));
  EXPECT_TRUE(fs::exists(ck / "optimizer.pt"));
  EXPECT_TRUE(fs::exists(ck / "state.json"));
  EXPECT_EQ(resolve_checkpoint_dir(o.out_dir), ck.string());
}

TEST(Trainer, ResumeEqualsAnUninterruptedRun) {
  TrainConfig c = tiny_config(6);
  c.checkpoint_every = 3;
  c.keep_checkpoints = 0;
  c.accumulate = 1;
  TrainOptions full;
  full.out_dir = fresh_dir("resume_full").string();
  const TrainResult a = train(c, full);
  ASSERT_EQ(a.losses.size(), 6u);

  TrainOptions resumed;
  resumed.out_dir = fresh_dir("resume_second").string();
  resumed.resume = (fs::path(full.out_dir) / "checkpoints" / "iter_00000003").string();
  Trainer t(c, resumed);
  EXPECT_EQ(t.iteration(), 3);
  const TrainResult b = t.run();
  ASSERT_EQ(b.losses.size(), 3u);
  EXPECT_EQ(b.first_iteration, 4);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(b.losses[i], a.losses[3 + i]) << "iteration " << 4 + i;

  // Resuming in place drops the log lines past the checkpoint instead of duplicating them.
  TrainOptions in_place;
  in_place.out_dir = full.out_dir;
  in_place.resume = resumed.resume;
  train(c, in_place);
  std::ifstream log(fs::path(full.out_dir) / "log.jsonl");
  int lines = 0;
  for (std::string l; std::getline(log, l);) lines += !l.empty();
  EXPECT_EQ(lines, 6);
}

TEST(Trainer, ResumeFromNothingIsAClearError) {
  TrainOptions o;
  o.out_dir = fresh_dir("bad_resume").string();
  o.resume = fresh_dir("no_such_run").string();
  EXPECT_THROW(Trainer(tiny_config(2), o), IoError);
}

}  // namespace
}  // namespace semat::train
