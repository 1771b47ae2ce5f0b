#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/metrics/datasets.h"
#include "semat/metrics/evaluate.h"

namespace fs = std::filesystem;

namespace semat::metrics {
namespace {

class Evaluate : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("semat_eval_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "gt");
    fs::create_directories(dir_ / "pred");
    fs::create_directories(dir_ / "tri");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& rel) const { return (dir_ / rel).string(); }
  void write(const std::string& rel, const cv::Mat& m) const {
    fs::create_directories((dir_ / rel).parent_path());
    ASSERT_TRUE(cv::imwrite(path(rel), m)) << rel;
  }
  static cv::Mat flat(int w, int h, int v) { return cv::Mat(h, w, CV_8UC1, cv::Scalar(v)); }

  // Catches the error and returns its message ("" when nothing was thrown).
  template <typename E, typename F>
  static std::string error_of(F f) {
    try {
      f();
    } catch (const E& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(Evaluate, ReadAlphaIsExactFor8And16Bit) {
  write("a8.png", flat(3, 2, 153));
  write("a16.png", cv::Mat(2, 3, CV_16UC1, cv::Scalar(1000)));
  write("a16as8.png", cv::Mat(2, 3, CV_16UC1, cv::Scalar(153 * 257)));
  write("rgb.png", cv::Mat(2, 3, CV_8UC3, cv::Scalar(200, 200, 200)));
  EXPECT_EQ(read_alpha(path("a8.png")).at<double>(1, 2), 153.0 / 255.0);
  EXPECT_EQ(read_alpha(path("a16.png")).at<double>(0, 0), 1000.0 / 65535.0);
  EXPECT_EQ(read_alpha(path("a16as8.png")).at<double>(0, 0), 153.0 / 255.0);
  const cv::Mat rgb = read_alpha(path("rgb.png"));
  EXPECT_EQ(rgb.type(), CV_64FC1);
  EXPECT_EQ(rgb.at<double>(0, 0), 200.0 / 255.0);
  // Every 8-bit level round-trips exactly.
  cv::Mat ramp(1, 256, CV_8UC1);
  for (int i = 0; i < 256; ++i) ramp.at<std::uint8_t>(0, i) = static_cast<std::uint8_t>(i);
  write("ramp.png", ramp);
  const cv::Mat r = read_alpha(path("ramp.png"));
  for (int i = 0; i < 256; ++i) ASSERT_EQ(r.at<double>(0, i), i / 255.0) << i;
}

TEST_F(Evaluate, ListImagesFiltersAndRejectsDuplicates) {
  write("gt/a.png", flat(4, 4, 0));
  write("gt/b.jpg", flat(4, 4, 0));
  std::ofstream(path("gt/notes.txt")) << "x";
  const auto files = list_images(path("gt"), "--gt");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_TRUE(files.count("a") && files.count("b"));
  write("gt/a.bmp", flat(4, 4, 0));
  const std::string msg = error_of<DataError>([&] { list_images(path("gt"), "--gt"); });
  EXPECT_NE(msg.find("'a'"), std::string::npos) << msg;
  EXPECT_THROW(list_images(path("nope"), "--gt"), IoError);
}

TEST_F(Evaluate, EmptyFolderIsAnError) {
  const std::string msg = error_of<DataError>([&] { gt_items_from_dir(path("gt")); });
  EXPECT_NE(msg.find("holds no images"), std::string::npos) << msg;
}

TEST_F(Evaluate, ScoresAndMeans) {
  write("gt/a.png", flat(16, 8, 0));
  write("gt/b.png", flat(16, 8, 255));
  write("pred/a.png", flat(16, 8, 51));  // 0.2 everywhere
  write("pred/b.png", flat(16, 8, 255));
  EvalOptions opt;
  opt.pred_dir = path("pred");
  const EvalReport r = evaluate(gt_items_from_dir(path("gt")), opt);
  ASSERT_EQ(r.images.size(), 2u);
  EXPECT_EQ(r.images[0].name, "a");
  const double n = 1024.0 * 512.0;
  EXPECT_NEAR(r.images[0].scores.sad, 0.2 * n / 1000, 1e-9);
  EXPECT_EQ(r.images[1].scores.sad, 0.0);
  EXPECT_NEAR(r.mean.sad, 0.1 * n / 1000, 1e-9);
  EXPECT_NEAR(r.mean.mad, 0.1, 1e-12);
  EXPECT_NEAR(r.mean.mse, 0.02, 1e-12);
}

TEST_F(Evaluate, MissingPredictionsAreListedOrSkipped) {
  write("gt/a.png", flat(8, 8, 0));
  write("gt/b.png", flat(8, 8, 0));
  write("gt/c.png", flat(8, 8, 0));
  write("pred/a.png", flat(8, 8, 0));
  EvalOptions opt;
  opt.pred_dir = path("pred");
  const auto items = gt_items_from_dir(path("gt"));
  const std::string msg = error_of<DataError>([&] { evaluate(items, opt); });
  EXPECT_NE(msg.find("2 ground-truth image(s) have no prediction"), std::string::npos) << msg;
  EXPECT_NE(msg.find("b, c"), std::string::npos) << msg;
  opt.allow_missing = true;
  const EvalReport r = evaluate(items, opt);
  EXPECT_EQ(r.images.size(), 1u);
  EXPECT_EQ(r.missing_predictions, (std::vector<std::string>{"b", "c"}));
}

TEST_F(Evaluate, ExtraPredictionsAreListed) {
  write("gt/a.png", flat(8, 8, 0));
  write("pred/a.png", flat(8, 8, 0));
  write("pred/zz.png", flat(8, 8, 0));
  EvalOptions opt;
  opt.pred_dir = path("pred");
  const std::string msg = error_of<DataError>([&] { evaluate(gt_items_from_dir(path("gt")), opt); });
  EXPECT_NE(msg.find("zz"), std::string::npos) << msg;
}

TEST_F(Evaluate, UnreadableFileIsNamed) {
  write("gt/a.png", flat(8, 8, 0));
  std::ofstream(path("pred/a.png")) << "not a png";
  EvalOptions opt;
  opt.pred_dir = path("pred");
  const std::string msg = error_of<IoError>([&] { evaluate(gt_items_from_dir(path("gt")), opt); });
  EXPECT_NE(msg.find("a.png"), std::string::npos) << msg;
}

TEST_F(Evaluate, DimNeedsTrimapAndSameSize) {
  write("gt/a.png", flat(8, 8, 0));
  write("pred/a.png", flat(8, 6, 0));
  write("tri/a.png", flat(8, 8, 128));
  EvalOptions opt;
  opt.protocol = Protocol::kDim;
  opt.pred_dir = path("pred");
  const auto items = gt_items_from_dir(path("gt"));
  EXPECT_THROW(evaluate(items, opt), ConfigError);  // no --trimap
  opt.trimap_dir = path("tri");
  const std::string msg = error_of<DataError>([&] { evaluate(items, opt); });
  EXPECT_NE(msg.find(path("pred/a.png")), std::string::npos) << msg;
  write("pred/a.png", flat(8, 8, 255));
  const EvalReport r = evaluate(items, opt);
  EXPECT_NEAR(r.images[0].scores.sad, 64.0 / 1000, 1e-12);
  EXPECT_EQ(r.images[0].trimap, path("tri/a.png"));
  // A trimap under protocol semat is a configuration mistake.
  opt.protocol = Protocol::kSemat;
  EXPECT_THROW(evaluate(items, opt), ConfigError);
}

TEST_F(Evaluate, ParallelForEachRethrowsTheFirstError) {
  std::atomic<int> ran{0};
  parallel_for_each(100, 4, [&](int) { ++ran; });
  EXPECT_EQ(ran, 100);
  try {
    parallel_for_each(8, 1, [&](int i) {
      if (i >= 3) throw DataError("item " + std::to_string(i));
    });
    FAIL();
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "item 3");
  }
}

TEST_F(Evaluate, DatasetLayouts) {
  const std::string root = path("data");
  EXPECT_THROW(dataset_layout("composition1k", root), ConfigError);
  fs::create_directories(root);
  EXPECT_THROW(dataset_layout("aim500", root), IoError);
  // Image-driven: one GT per image, GT extras unused.
  write("data/AIM-500/original/p1.jpg", cv::Mat(4, 4, CV_8UC3, cv::Scalar(1, 2, 3)));
  write("data/AIM-500/mask/p1.png", flat(4, 4, 255));
  write("data/AIM-500/mask/p2.png", flat(4, 4, 255));
  DatasetLayout l = dataset_layout("aim500", root);
  ASSERT_EQ(l.items.size(), 1u);
  EXPECT_EQ(l.items[0].name, "p1");
  EXPECT_EQ(l.items[0].path, path("data/AIM-500/mask/p1.png"));
  // --root pointing at the dataset folder itself.
  EXPECT_EQ(dataset_layout("aim500", path("data/AIM-500")).items.size(), 1u);
  // Missing GT for an image.
  write("data/AIM-500/original/p3.jpg", cv::Mat(4, 4, CV_8UC3, cv::Scalar(1, 2, 3)));
  EXPECT_THROW(dataset_layout("aim500", root), DataError);
  // GT-driven sets.
  write("data/RefMatte_RW_100/mask/img_0.png", flat(4, 4, 255));
  write("data/RefMatte_RW_100/mask/img_1.png", flat(4, 4, 255));
  EXPECT_EQ(dataset_layout("rw100", root).items.size(), 2u);
  write("data/SIMD/generated_testset/fire/alpha/f1.png", flat(4, 4, 255));
  write("data/SIMD/generated_testset/net/alpha/n1.png", flat(4, 4, 255));
  l = dataset_layout("sim", root);
  ASSERT_EQ(l.items.size(), 2u);
  EXPECT_EQ(l.items[0].name, "fire/f1");
  write("data/RealWorldPortrait-636/alpha/r.png", flat(4, 4, 255));
  EXPECT_EQ(dataset_layout("rwp636", root).items.size(), 1u);
  write("data/AM-2K/validation/mask/m.png", flat(4, 4, 255));
  EXPECT_EQ(dataset_layout("am2k", root).items.size(), 1u);
  write("data/P3M-10k/validation/P3M-500-NP/mask/q.png", flat(4, 4, 255));
  EXPECT_EQ(dataset_layout("p3m500np", root).items.size(), 1u);
}

TEST_F(Evaluate, SimKeysMatchFlatOrNestedPredictions) {
  write("data/SIMD/generated_testset/fire/alpha/f1.png", flat(4, 4, 255));
  write("data/SIMD/generated_testset/net/alpha/n1.png", flat(4, 4, 255));
  write("pred/f1.png", flat(4, 4, 255));
  write("pred/net/n1.png", flat(4, 4, 255));
  EvalOptions opt;
  opt.pred_dir = path("pred");
  const EvalReport r = evaluate(dataset_layout("sim", path("data")).items, opt);
  ASSERT_EQ(r.images.size(), 2u);
  EXPECT_EQ(r.images[0].pred, path("pred/f1.png"));
  EXPECT_EQ(r.images[1].pred, path("pred/net/n1.png"));
}

}  // namespace
}  // namespace semat::metrics
