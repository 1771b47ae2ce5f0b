// `semat eval` and `semat eval-instances` run as a person runs them, on tiny PNG folders made here.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include "support/cli.h"

namespace fs = std::filesystem;

namespace {

using semat::test::CliRun;

class CliEval : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("semat_e2e_eval_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Two images: a soft disc predicted slightly shifted, and a perfect prediction.
    cv::Mat gt(60, 80, CV_8UC1, cv::Scalar(0)), pred = gt.clone();
    cv::circle(gt, {40, 30}, 15, cv::Scalar(255), cv::FILLED, cv::LINE_AA);
    cv::circle(pred, {43, 30}, 15, cv::Scalar(255), cv::FILLED, cv::LINE_AA);
    put("gt/one.png", gt);
    put("pred/one.png", pred);
    put("gt/two.png", gt);
    put("pred/two.png", gt);
    cv::Mat tri(60, 80, CV_8UC1, cv::Scalar(0));
    cv::circle(tri, {40, 30}, 20, cv::Scalar(128), cv::FILLED);
    put("tri/one.png", tri);
    put("tri/two.png", tri);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string p(const std::string& rel) const { return (dir_ / rel).string(); }
  void put(const std::string& rel, const cv::Mat& m) const {
    fs::create_directories((dir_ / rel).parent_path());
    ASSERT_TRUE(cv::imwrite(p(rel), m));
  }

  CliRun run(const std::string& args) { return semat::test::run_cli(SEMAT_BINARY, args, dir_); }

  void expect_failure(const std::string& args, int code, const std::string& needle) {
    const CliRun r = run(args);
    EXPECT_EQ(r.code, code) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  }

  std::string folders() const { return "--pred " + p("pred") + " --gt " + p("gt"); }

  fs::path dir_;
};

TEST_F(CliEval, PrintsThePaperTable) {
  const CliRun r = run("eval " + folders());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("MSE(x1e3)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Conn"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("protocol semat, 2 images"), std::string::npos) << r.out;
}

TEST_F(CliEval, JsonHasRawValuesAndCsvHasRows) {
  const std::string csv = p("out/scores.csv");
  fs::create_directories(p("out"));
  const CliRun r = run("eval " + folders() + " --json --csv " + csv);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["protocol"], "semat");
  EXPECT_EQ(j["count"], 2);
  ASSERT_EQ(j["images"].size(), 2u);
  EXPECT_EQ(j["images"][0]["name"], "one");
  EXPECT_GT(j["images"][0]["sad"].get<double>(), 0.0);
  const double mad = j["images"][0]["mad"].get<double>();
  EXPECT_GT(mad, 0.0);
  EXPECT_LT(mad, 0.2);  // raw, not x1e3
  // The perfect prediction still differs at 1024: the GT is resized and kept in float, the
  // prediction resized and quantised to 8 bits, so each pixel is off by at most 0.5 / 255.
  const double mad2 = j["images"][1]["mad"].get<double>();
  EXPECT_GT(mad2, 0.0);
  EXPECT_LE(mad2, 0.5 / 255);
  EXPECT_NEAR(j["mean"]["mad"].get<double>(), (mad + mad2) / 2, 1e-12);
  std::ifstream in(csv);
  std::string header, row1, row2, extra;
  std::getline(in, header);
  std::getline(in, row1);
  std::getline(in, row2);
  EXPECT_EQ(header, "name,sad,mse,mad,grad,conn,pred,gt");
  EXPECT_EQ(row1.rfind("one,", 0), 0u) << row1;
  EXPECT_EQ(row2.rfind("two,", 0), 0u) << row2;
  EXPECT_FALSE(std::getline(in, extra));
}

TEST_F(CliEval, DimProtocolWithTrimaps) {
  const CliRun r = run("eval " + folders() + " --protocol dim --trimap " + p("tri") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["protocol"], "dim");
  EXPECT_GT(j["mean"]["conn"].get<double>(), 0.0);
  expect_failure("eval " + folders() + " --protocol dim", 2, "--trimap");
}

TEST_F(CliEval, DimSizeMismatchNamesTheFile) {
  put("pred/two.png", cv::Mat(30, 40, CV_8UC1, cv::Scalar(0)));
  expect_failure("eval " + folders() + " --protocol dim --trimap " + p("tri"), 3, p("pred/two.png"));
  // Protocol semat resizes instead.
  EXPECT_EQ(run("eval " + folders()).code, 0);
}

TEST_F(CliEval, MissingPredictionListedOrSkipped) {
  fs::remove(p("pred/two.png"));
  expect_failure("eval " + folders(), 3, "two");
  const CliRun r = run("eval " + folders() + " --allow-missing --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["count"], 1);
  EXPECT_EQ(j["skipped"]["missing_predictions"][0], "two");
}

TEST_F(CliEval, BadInputsAreOneLineErrors) {
  fs::create_directories(p("empty"));
  expect_failure("eval --pred " + p("pred") + " --gt " + p("empty"), 3, "holds no images");
  expect_failure("eval --pred " + p("nope") + " --gt " + p("gt"), 3, "nope");
  std::ofstream(p("pred/one.png")) << "garbage";
  expect_failure("eval " + folders(), 3, "one.png");
  expect_failure("eval " + folders() + " --protocol matlab", 2, "protocol");
  expect_failure("eval --pred " + p("pred"), 2, "--gt");
  expect_failure("eval --pred " + p("pred") + " --dataset nosuch --root " + p(""), 2, "nosuch");
}

TEST_F(CliEval, SixteenBitAndColourInputs) {
  cv::Mat gt = cv::imread(p("gt/one.png"), cv::IMREAD_UNCHANGED), g16, bgr;
  gt.convertTo(g16, CV_16U, 257.0);
  cv::cvtColor(gt, bgr, cv::COLOR_GRAY2BGR);
  put("gt/one.png", g16);
  put("pred/one.png", bgr);
  // Protocol dim compares at the original size, so equal mattes give exactly 0.
  const CliRun r = run("eval " + folders() + " --protocol dim --trimap " + p("tri") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["images"][0]["sad"].get<double>(), 0.0);
  EXPECT_EQ(j["images"][0]["conn"].get<double>(), 0.0);
}

TEST_F(CliEval, DatasetLayoutReportsItsFiles) {
  put("data/AIM-500/original/one.jpg", cv::Mat(60, 80, CV_8UC3, cv::Scalar(9, 9, 9)));
  fs::create_directories(p("data/AIM-500/mask"));
  fs::copy_file(p("gt/one.png"), p("data/AIM-500/mask/one.png"));
  fs::remove(p("pred/two.png"));
  const CliRun r = run("eval --dataset aim500 --root " + p("data") + " --pred " + p("pred"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("dataset aim500: 1 ground truths from " + p("data/AIM-500/mask")), std::string::npos)
      << r.out;
}

TEST_F(CliEval, InstancesTableAndJson) {
  cv::Mat a(40, 40, CV_8UC1, cv::Scalar(0)), b = a.clone();
  a(cv::Rect(0, 0, 10, 10)) = 255;
  b(cv::Rect(20, 20, 10, 10)) = 255;
  put("hg/im/0.png", a);
  put("hg/im/1.png", b);
  put("hp/im/x.png", b);
  const std::string args = "eval-instances --pred " + p("hp") + " --gt " + p("hg");
  const CliRun r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("IMQ_mad"), std::string::npos) << r.out;
  const CliRun js = run(args + " --iou 0.5 --json");
  ASSERT_EQ(js.code, 0) << js.err;
  const auto j = nlohmann::json::parse(js.out);
  ASSERT_EQ(j["thresholds"].size(), 1u);
  EXPECT_EQ(j["thresholds"][0]["tp"], 1);
  EXPECT_EQ(j["thresholds"][0]["fn"], 1);
  EXPECT_NEAR(j["thresholds"][0]["imq_mad"].get<double>(), 1.0 / 1.5, 1e-12);
  expect_failure(args + " --iou 0.5,abc", 2, "--iou");
}

}  // namespace
