// The learned prior (--prior isnet|grabcut|auto) through the semat executable: the installed
// IS-Net on the sample photo (skipped where `make models` has not run), and one clear line with a
// non-zero exit for each way the model can be missing or bad.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/cli_test.h"

namespace fs = std::filesystem;

namespace {

const std::string kPhoto = std::string(SEMAT_SOURCE_DIR) + "/examples/astronaut.png";
const std::string kBox = "15,10,375,512";

// The folder `make models` filled: ctest hides it from the engine (SEMAT_MODELS points at an
// empty folder, cmake/SematTargets.cmake) and names it in SEMAT_TEST_MODELS.
fs::path installed_isnet() {
  const char* dir = std::getenv("SEMAT_TEST_MODELS");
  if (!dir || !*dir) return {};
  const fs::path f = fs::path(dir) / "isnet_medium_fp16.onnx";
  std::error_code ec;
  return fs::is_regular_file(f, ec) ? f : fs::path();
}

std::size_t lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

class CliPrior : public semat::test::CliTest {
 protected:
  // Runs with SEMAT_MODELS set to `models` (the child inherits the environment).
  semat::test::CliRun run_with_models(const fs::path& models, const std::string& args) {
    const char* old = std::getenv("SEMAT_MODELS");
    const std::string keep = old ? old : "";
    ::setenv("SEMAT_MODELS", models.c_str(), 1);
    semat::test::CliRun r = run(args);
    if (old) ::setenv("SEMAT_MODELS", keep.c_str(), 1);
    else ::unsetenv("SEMAT_MODELS");
    return r;
  }
};

TEST_F(CliPrior, NotInstalledIsOneLineSayingHowToInstall) {
  const fs::path empty = dir_ / "models";
  fs::create_directories(empty);
  const auto r = run_with_models(empty, "matte " + kPhoto + " --box " + kBox + " --prior isnet --out " + (dir_ / "o").string());
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("make models"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "o" / "alpha.png"));
}

TEST_F(CliPrior, AutoWithoutTheModelFallsBackToGrabCutAndSaysSo) {
  const fs::path empty = dir_ / "models";
  fs::create_directories(empty);
  const auto r = run_with_models(empty, "matte " + kPhoto + " --box " + kBox + " --out " + (dir_ / "o").string() + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("engine"), "grabcut>rule>closed-form") << r.out;
  EXPECT_NE(r.err.find("make models"), std::string::npos) << r.err;
}

TEST_F(CliPrior, ModelFileThatIsNotOnnxIsOneLineNamingIt) {
  const fs::path bad = dir_ / "garbage.onnx";
  std::ofstream(bad) << "this is not a protobuf";
  const auto r = run("matte " + kPhoto + " --box " + kBox + " --prior isnet --isnet " + bad.string() + " --out " + (dir_ / "o").string());
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(bad.string()), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "o" / "alpha.png"));
}

TEST_F(CliPrior, TruncatedInstalledModelIsNotUsedAndTheLineSaysWhy) {
  const fs::path models = dir_ / "models";
  fs::create_directories(models);
  std::ofstream(models / "isnet_medium_fp16.onnx") << "truncated";
  const auto r = run_with_models(models, "matte " + kPhoto + " --box " + kBox + " --prior isnet --out " + (dir_ / "o").string());
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("make models"), std::string::npos) << r.err;
}

TEST_F(CliPrior, InstalledIsNetMattesTheSamplePhotoWithoutFog) {
  const fs::path isnet = installed_isnet();
  if (isnet.empty()) GTEST_SKIP() << "IS-Net not installed (make models)";
  const auto r = run_with_models(isnet.parent_path(),
                                 "matte " + kPhoto + " --box " + kBox + " --out " + (dir_ / "o").string() + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("engine"), "isnet>isnet>closed-form") << r.out;
  const cv::Mat alpha = cv::imread((dir_ / "o" / "alpha.png").string(), cv::IMREAD_GRAYSCALE);
  ASSERT_FALSE(alpha.empty());
  const cv::Mat trimap = cv::imread((dir_ / "o" / "trimap.png").string(), cv::IMREAD_GRAYSCALE);
  ASSERT_EQ(trimap.size(), alpha.size());
  // No grey fog: what the trimap calls background is exactly 0, and that is nearly everything
  // outside the box (the band may follow the subject's edges a little beyond a loose box).
  EXPECT_EQ(cv::countNonZero(alpha & (trimap == 0)), 0);
  cv::Mat outside(alpha.size(), CV_8U, cv::Scalar(255));
  outside(cv::Rect(15, 10, 360, 502)).setTo(0);
  EXPECT_GT(cv::countNonZero((trimap == 0) & outside), 0.9 * cv::countNonZero(outside));
  // The astronaut is found: a good share of the box is opaque, and not all of it.
  const double opaque = cv::countNonZero(alpha(cv::Rect(15, 10, 360, 502)) >= 250) / (360.0 * 502.0);
  EXPECT_GT(opaque, 0.3);
  EXPECT_LT(opaque, 0.95);
}

}  // namespace
