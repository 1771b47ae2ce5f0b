// The SEMat trainer on the tiny fixture's shapes: configs, generated scenes and datasets on disk,
// the schedule, learning (overfitting 4 scenes), frozen SAM weights, exact resume on the CPU, the
// run's reports (CSV, plot, panels, progress, held-out evaluation), bf16 autocast and export.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <fstream>
#include <iostream>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <opencv2/imgcodecs.hpp>
#include <sstream>

#include <torch/version.h>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/io/image_io.h"
#include "semat/models/semat_predictor.h"
#include "semat/train/report.h"
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
  // Loss options are checked by losses::LossConfig, the struct the criterion uses.
  EXPECT_NE(config_error(R"({"loss": {"reg_weight": -1}})").find("'reg_weight' must be finite and >= 0"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"loss": {"ghm_momentum": 1}})").find("'ghm_momentum'"), std::string::npos);
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
  EXPECT_DOUBLE_EQ(c.loss.reg_weight, 0.5);
  EXPECT_EQ(c.data.samples, 4);
  const TrainConfig d = parse_train_config(train_config_json(c), "again");
  EXPECT_EQ(train_config_json(d), train_config_json(c));
}

TEST(TrainConfig, ShippedTinyConfigParses) {
  const TrainConfig c = load_train_config(std::string(SEMAT_SOURCE_DIR) + "/configs/tiny-synthetic.json");
  EXPECT_TRUE(fs::exists(c.sam_checkpoint)) << c.sam_checkpoint;
  EXPECT_EQ(c.data.samples, 4);
  // The paper-recipe example parses too (its data folders are the user's to provide).
  const TrainConfig l = load_train_config(std::string(SEMAT_SOURCE_DIR) + "/configs/semat-vit-l.json");
  EXPECT_EQ(l.iterations, 60000);
  EXPECT_EQ(l.lr, 5e-5);
  EXPECT_EQ(l.data.type, "datasets");
  EXPECT_EQ(l.data.datasets.size(), 3u);
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
// 2; a manual run gets there in 46, and ends 90% down). A CI test gets 24 iterations of batch 1 (~14 s), so
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

// Recomputing the blocks in backward changes memory, not the numbers: the same losses up to the
// float rounding that AdamW's normalised steps carry forward (exact gradients:
// SematBuild.CheckpointedBlocksGiveTheSameGradients).
TEST(Trainer, ActivationCheckpointingKeepsTheLosses) {
  TrainConfig c = tiny_config(3);
  c.checkpoint_activations = false;
  TrainOptions o;
  o.out_dir = fresh_dir("ckpt_off").string();
  const TrainResult plain = train(c, o);
  c.checkpoint_activations = true;
  o.out_dir = fresh_dir("ckpt_on").string();
  const TrainResult recomputed = train(c, o);
  ASSERT_EQ(plain.losses.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_NEAR(recomputed.losses[i], plain.losses[i], 1e-5 * plain.losses[i]) << "iteration " << i + 1;
}

// Resumed in place from an early checkpoint, with fewer checkpoints kept: the later folders of
// the first run neither count against the budget nor get the new checkpoint deleted.
TEST(Trainer, PruningAfterAnEarlyResumeKeepsTheNewCheckpoint) {
  TrainConfig c = tiny_config(6);
  c.checkpoint_every = 2;
  c.keep_checkpoints = 0;
  c.visual_every = 0;
  TrainOptions o;
  o.out_dir = fresh_dir("prune").string();
  train(c, o);
  const fs::path ck = fs::path(o.out_dir) / "checkpoints";
  c.iterations = 4;
  c.keep_checkpoints = 1;
  o.resume = (ck / "iter_00000002").string();
  train(c, o);
  EXPECT_TRUE(fs::exists(ck / "iter_00000004" / "state.json"));
  EXPECT_FALSE(fs::exists(ck / "iter_00000002"));
  EXPECT_EQ(resolve_checkpoint_dir(o.out_dir), (ck / "iter_00000004").string());
}

TEST(Trainer, ResumeFromNothingIsAClearError) {
  TrainOptions o;
  o.out_dir = fresh_dir("bad_resume").string();
  o.resume = fresh_dir("no_such_run").string();
  EXPECT_THROW(Trainer(tiny_config(2), o), IoError);
}

TEST(TrainConfig, ParsesDatasetsAndResolvesPathsAgainstTheConfigFolder) {
  const TrainConfig c = parse_train_config(R"({
    "amp": "bf16", "plot_every": 7, "visual_every": 0,
    "eval": {"folder": "held_out", "every": 50, "max_images": 3},
    "data": {"size": 512, "box_jitter": 0.05, "workers": 3, "prefetch": 4,
             "augment": {"flip": false, "scale_min": 0.8, "trimap_max_kernel": 15},
             "datasets": [{"type": "coco-matting", "root": "cm", "images": "/abs/train2017", "min_score": 95},
                          {"type": "composition", "fg": "d646/fg", "alpha": "d646/alpha", "bg": "bg",
                           "weight": 0.5, "name": "d646"}]}})",
                                           "cfg.json", "/cfgs");
  EXPECT_EQ(c.data.type, "datasets");  // implied by the list
  ASSERT_EQ(c.data.datasets.size(), 2u);
  EXPECT_EQ(c.data.datasets[0].root, "/cfgs/cm");
  EXPECT_EQ(c.data.datasets[0].images, "/abs/train2017");
  EXPECT_EQ(c.data.datasets[0].min_score, 95);
  EXPECT_EQ(c.data.datasets[1].fg, "/cfgs/d646/fg");
  EXPECT_EQ(c.data.datasets[1].weight, 0.5);
  EXPECT_EQ(c.data.augment.size, 512);
  EXPECT_EQ(c.data.augment.box_jitter, 0.05);
  EXPECT_FALSE(c.data.augment.flip);
  EXPECT_EQ(c.data.augment.trimap_max_kernel, 15);
  EXPECT_EQ(c.eval.folder, "/cfgs/held_out");
  EXPECT_EQ(c.amp, "bf16");
  // The stored copy parses back to the same thing.
  const TrainConfig back = parse_train_config(train_config_json(c), "state.json");
  EXPECT_EQ(train_config_json(back), train_config_json(c));
}

TEST(TrainConfig, RejectsBadDatasetEntriesNamingThem) {
  EXPECT_NE(config_error(R"({"data": {"datasets": [{"type": "composition", "fgs": "x"}]}})")
                .find("'data.datasets[0].fgs'"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"data": {"datasets": {"type": "composition"}}})").find("'data.datasets'"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"data": {"type": "datasets"}})").find("'data.datasets'"), std::string::npos);
  EXPECT_NE(config_error(R"({"amp": "fp16"})").find("'amp'"), std::string::npos);
  EXPECT_NE(config_error(R"({"data": {"augment": {"flip": 1}}})").find("'data.augment.flip' must be true or false"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"eval": {"every": 0}})").find("'eval.every'"), std::string::npos);
  EXPECT_NE(config_error(R"({"eval": {"resize": "bicubic"}})").find("'eval.resize'"), std::string::npos);
}

TEST(Report, CsvAndJsonlLogsAreTrimmedToTheResumedIteration) {
  const fs::path d = fresh_dir("csv");
  fs::create_directories(d);
  {
    CsvLog csv((d / "log.csv").string());
    std::ofstream jl(d / "log.jsonl");
    for (int i = 1; i <= 5; ++i) {
      csv.append(i, {{"loss", 1.0 / i}, {"lr", 0.5}});
      jl << "{\"iter\": " << i << ", \"loss\": " << 1.0 / i << "}\n";
    }
  }
  trim_csv_log((d / "log.csv").string(), 3);
  trim_jsonl_log((d / "log.jsonl").string(), 3);
  std::ifstream in(d / "log.csv");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "iter,loss,lr\n1,1,0.5\n2,0.5,0.5\n3,0.333333333,0.5\n");
  const auto rows = read_jsonl_log((d / "log.jsonl").string());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows.back().first, 3);
  // A reopened CSV does not repeat the header.
  CsvLog again((d / "log.csv").string());
  again.append(4, {{"loss", 0.25}, {"lr", 0.5}});
  std::ifstream in2(d / "log.csv");
  std::string line;
  int headers = 0;
  while (std::getline(in2, line)) headers += line.rfind("iter,", 0) == 0;
  EXPECT_EQ(headers, 1);
}

TEST(Report, LossPlotDrawsEverySeries) {
  std::vector<std::pair<int64_t, LogRow>> log;
  for (int i = 1; i <= 200; ++i)
    log.push_back({i, {{"known_l1", 0.5 / std::sqrt(i)}, {"loss", 2.0 / i}, {"lr", 1e-3}, {"time", i * 0.1}}});
  const cv::Mat img = render_loss_plot(log, {640, 360});
  ASSERT_EQ(img.size(), cv::Size(640, 360));
  // The second series (known_l1, listed first but drawn after the total) is blue, BGR (200, 80, 0).
  cv::Mat hit;
  cv::inRange(img, cv::Scalar(150, 40, 0), cv::Scalar(255, 150, 90), hit);  // antialiased
  EXPECT_GT(cv::countNonZero(hit(cv::Rect(70, 20, 400, 295))), 100);
  // The total (black, 2 px) falls from the upper left to the lower right.
  cv::Mat black;
  cv::inRange(img, cv::Scalar(0, 0, 0), cv::Scalar(30, 30, 30), black);
  EXPECT_GT(cv::countNonZero(black(cv::Rect(75, 25, 60, 140))), 20);
  EXPECT_GT(cv::countNonZero(black(cv::Rect(380, 160, 85, 150))), 20);
  // An empty log still gives a picture.
  EXPECT_EQ(render_loss_plot({}, {320, 200}).size(), cv::Size(320, 200));
}

TEST(Report, PanelShowsFourTilesPerSample) {
  PanelRow row;
  row.image = cv::Mat(100, 80, CV_8UC3, cv::Scalar(255, 0, 0));  // RGB red
  row.box[0] = 10, row.box[1] = 10, row.box[2] = 60, row.box[3] = 90;
  row.trimap = cv::Mat(100, 80, CV_32F, cv::Scalar(0.5));
  row.alpha = cv::Mat(100, 80, CV_32F, cv::Scalar(1.0));
  row.alpha_gt = cv::Mat(100, 80, CV_32F, cv::Scalar(0.0));
  const cv::Mat p = render_panel({row, row}, 64);
  ASSERT_EQ(p.cols, 4 * 64);
  ASSERT_EQ(p.rows, 24 + 2 * 64);
  EXPECT_EQ(p.at<cv::Vec3b>(24 + 32, 32 + 20), cv::Vec3b(0, 0, 255));  // BGR red inside the box
  EXPECT_NEAR(p.at<cv::Vec3b>(24 + 32, 64 + 32)[0], 128, 1);          // trimap unknown = grey
  EXPECT_EQ(p.at<cv::Vec3b>(24 + 32, 128 + 32), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(p.at<cv::Vec3b>(24 + 64 + 32, 192 + 32), cv::Vec3b(0, 0, 0));
  // The box is drawn in green on the image tile.
  EXPECT_EQ(p.at<cv::Vec3b>(24 + 6, 32), cv::Vec3b(0, 255, 0));
}

TEST(Report, ProgressBarRedrawsOneLineAndLogModePrintsEveryN) {
  std::ostringstream bar, lines;
  TrainProgress b(&bar, ProgressStyle::kBar, 10, 1, 5);
  b.update(1, 0.5, 1e-3);
  b.message("eval @1: SAD 1.0");
  b.update(10, 0.25, 1e-3);
  b.finish();
  EXPECT_EQ(bar.str().rfind("\r[", 0), 0u) << bar.str();
  EXPECT_NE(bar.str().find("ETA 0:00:00"), std::string::npos) << bar.str();
  EXPECT_NE(bar.str().find("100%  iter 10/10"), std::string::npos) << bar.str();
  EXPECT_NE(bar.str().find("eval @1: SAD 1.0\n"), std::string::npos);
  TrainProgress l(&lines, ProgressStyle::kLog, 10, 1, 5);
  for (int i = 1; i <= 10; ++i) l.update(i, 1.0, 1e-3);
  std::string s = lines.str();
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 2);
  EXPECT_NE(s.find("iter 5/10"), std::string::npos);
  EXPECT_EQ(s.find('\r'), std::string::npos);
}

// A composition dataset (foregrounds with soft-edged alpha, separate backgrounds) and a held-out
// folder (images/ + alpha/), written as PNG files the way such datasets are laid out on disk.
void write_composition_set(const fs::path& root, int n_fg, int n_bg, int side) {
  for (const char* sub : {"fg", "alpha", "bg", "held_out/images", "held_out/alpha"}) fs::create_directories(root / sub);
  cv::RNG rng(7);
  for (int i = 0; i < n_fg; ++i) {
    cv::Mat fg(side, side, CV_8UC3), a = cv::Mat::zeros(side, side, CV_8U);
    rng.fill(fg, cv::RNG::UNIFORM, 0, 255);
    cv::GaussianBlur(fg, fg, {0, 0}, 3);
    cv::ellipse(a, {side / 2 + i * 5, side / 2}, {side / 4, side / 3}, 20.0 * i, 0, 360, 255, cv::FILLED);
    cv::GaussianBlur(a, a, {0, 0}, 2);
    const std::string stem = "subject_" + std::to_string(i);
    cv::imwrite((root / "fg" / (stem + ".jpg")).string(), fg);
    cv::imwrite((root / "alpha" / (stem + ".png")).string(), a);
    if (i < 2) {
      cv::Mat img = fg * 0.5;
      cv::imwrite((root / "held_out/images" / (stem + ".png")).string(), img);
      cv::imwrite((root / "held_out/alpha" / (stem + ".png")).string(), a);
    }
  }
  for (int i = 0; i < n_bg; ++i) {
    cv::Mat bg(side + 40, side + 60, CV_8UC3);
    rng.fill(bg, cv::RNG::UNIFORM, 0, 255);
    cv::imwrite((root / "bg" / ("bg_" + std::to_string(i) + ".jpg")).string(), bg);
  }
}

// tiny_config on the composition set write_composition_set made under `root`.
TrainConfig composition_config(const fs::path& root, int64_t iterations) {
  TrainConfig c = tiny_config(iterations);
  c.data.type = "datasets";
  data::DatasetSpec spec;
  spec.type = "composition";
  spec.fg = (root / "fg").string();
  spec.alpha = (root / "alpha").string();
  spec.bg = (root / "bg").string();
  c.data.datasets = {spec};
  c.data.augment.size = c.data.size;
  return c;
}

TEST(Trainer, TrainsOnDatasetsWithLogsPlotPanelsAndHeldOutEvaluation) {
  const fs::path d = fresh_dir("datasets");
  write_composition_set(d / "data", 3, 2, 200);
  TrainConfig c = composition_config(d / "data", 4);
  c.batch_size = 2;
  c.checkpoint_every = 2;
  c.plot_every = 2;
  c.visual_every = 2;
  c.eval.folder = (d / "data/held_out").string();
  c.eval.every = 2;
  c.eval.resize = "torch";  // the official evaluation loader's preprocessing
  TrainOptions o;
  o.out_dir = (d / "run").string();
  std::ostringstream progress;
  o.progress = &progress;
  const TrainResult r = train(c, o);
  ASSERT_EQ(r.losses.size(), 4u);
  for (double l : r.losses) EXPECT_TRUE(std::isfinite(l));
  const fs::path run = o.out_dir;
  // CSV: header + one row per iteration.
  std::ifstream csv(run / "log.csv");
  std::string header, line;
  std::getline(csv, header);
  EXPECT_EQ(header.rfind("iter,loss,", 0), 0u) << header;
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 4);
  EXPECT_EQ(cv::imread((run / "loss_plot.png").string()).size(), cv::Size(960, 540));
  const cv::Mat panel = cv::imread((run / "visuals" / "iter_00000004.png").string());
  EXPECT_EQ(panel.size(), cv::Size(4 * 256, 24 + 2 * 256));  // two samples in the batch
  EXPECT_TRUE(fs::exists(run / "visuals" / "iter_00000002.png"));
  // Held-out evaluation at iterations 2 and 4, with the five metrics.
  const auto evals = read_jsonl_log((run / "eval.jsonl").string());
  ASSERT_EQ(evals.size(), 2u);
  EXPECT_EQ(evals[1].first, 4);
  std::map<std::string, double> m(evals[1].second.begin(), evals[1].second.end());
  for (const char* k : {"sad", "mse", "mad", "grad", "conn"}) {
    ASSERT_TRUE(m.count(k)) << k;
    EXPECT_TRUE(std::isfinite(m[k]) && m[k] >= 0) << k;
  }
  EXPECT_EQ(m["images"], 2);
  EXPECT_NE(progress.str().find("eval @4 on 2 images: SAD"), std::string::npos) << progress.str();
}

// Samples from disk prepared by two background threads: a resumed run still repeats the
// uninterrupted one exactly (sample k depends only on (seed, k), not on which thread made it).
TEST(Trainer, ResumeOnDatasetsWithBackgroundLoadingEqualsAnUninterruptedRun) {
  const fs::path d = fresh_dir("resume_datasets");
  write_composition_set(d / "data", 3, 2, 160);
  TrainConfig c = composition_config(d / "data", 4);
  c.data.workers = 2;
  c.checkpoint_every = 2;
  c.keep_checkpoints = 0;
  c.visual_every = 0;
  TrainOptions full;
  full.out_dir = (d / "full").string();
  const TrainResult a = train(c, full);
  TrainOptions resumed;
  resumed.out_dir = (d / "resumed").string();
  resumed.resume = (d / "full" / "checkpoints" / "iter_00000002").string();
  const TrainResult b = train(c, resumed);
  ASSERT_EQ(b.losses.size(), 2u);
  EXPECT_EQ(b.losses[0], a.losses[2]);
  EXPECT_EQ(b.losses[1], a.losses[3]);
}

TEST(Trainer, MismatchedDatasetOrEvalFolderFailsBeforeTraining) {
  const fs::path d = fresh_dir("mismatch");
  write_composition_set(d / "data", 2, 1, 96);
  fs::remove(d / "data/held_out/alpha/subject_1.png");
  TrainConfig c = tiny_config(2);
  c.eval.folder = (d / "data/held_out").string();
  TrainOptions o;
  o.out_dir = (d / "run").string();
  try {
    Trainer t(c, o);
    FAIL() << "expected a DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("subject_1.png"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(d / "run" / "checkpoints"));
}

// On CUDA autocast runs the SEMat forward in bf16 (untested here: no GPU). On the CPU it needs
// LibTorch >= 2.0; with 1.13 the option is refused up front, naming the key.
TEST(Trainer, Bf16Autocast) {
  TrainConfig c = tiny_config(3);
  TrainOptions o;
  o.out_dir = fresh_dir("fp32").string();
#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
  const TrainResult fp32 = train(c, o);
  c.amp = "bf16";
  o.out_dir = fresh_dir("bf16").string();
  const TrainResult bf16 = train(c, o);
  ASSERT_EQ(bf16.losses.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(std::isfinite(bf16.losses[i]));
    // Same data and weights: close, but not the float32 numbers (autocast really ran).
    EXPECT_NEAR(bf16.losses[i], fp32.losses[i], 0.1 * fp32.losses[i]);
  }
  EXPECT_NE(bf16.losses[0], fp32.losses[0]);
#else
  c.amp = "bf16";
  try {
    Trainer t(c, o);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'amp' bf16 on the CPU needs LibTorch 2.0"), std::string::npos) << e.what();
  }
#endif
}

TEST(Trainer, ExportWritesACheckpointThatSematMatteLoads) {
  TrainConfig c = tiny_config(2);
  TrainOptions o;
  o.out_dir = fresh_dir("export").string();
  Trainer t(c, o);
  t.run();
  const std::string file = (fs::path(o.out_dir) / "semat.safetensors").string();
  const ExportResult r = export_checkpoint(o.out_dir, file);
  EXPECT_EQ(r.iteration, 2);
  EXPECT_EQ(r.model, "semat-tiny");
  const io::Checkpoint ck = io::load_checkpoint(file);
  EXPECT_EQ(static_cast<int64_t>(ck.tensors.size()), r.tensors);
  // Every trained tensor is in it, bit for bit, under its official name...
  for (const auto& w : t.trained_weights()) {
    ASSERT_TRUE(ck.find(w.name)) << w.name;
    EXPECT_TRUE(ck.at(w.name).bytes == w.bytes) << w.name;
  }
  // ...and so is the frozen SAM.
  for (const auto& w : t.frozen_weights()) ASSERT_TRUE(ck.find(w.name)) << w.name;
  // The inference loader accepts it strictly and predicts.
  models::SematPredictor predictor(file);
  cv::Mat img(120, 160, CV_8UC3, cv::Scalar(30, 60, 90));
  cv::circle(img, {80, 60}, 30, cv::Scalar(220, 200, 180), cv::FILLED);
  const auto mattes = predictor.predict(img, {Box{40, 20, 120, 100}});
  ASSERT_EQ(mattes.size(), 1u);
  EXPECT_EQ(mattes[0].alpha.size(), img.size());
  // A folder that is not a training checkpoint is refused by name.
  EXPECT_THROW(export_checkpoint(fresh_dir("not_a_run").string(), file), IoError);
}

}  // namespace
}  // namespace semat::train
