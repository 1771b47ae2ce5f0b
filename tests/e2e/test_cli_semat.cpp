// `semat matte --semat` and `semat info` on the tiny SEMat fixture: the alpha at the original size
// is the official output resized, boxes are batched, --refine only touches the unknown band, and
// wrong checkpoints fail with one line and no files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/io/checkpoint.h"
#include "semat/io/image_io.h"
#include "support/cli_test.h"

namespace fs = std::filesystem;

namespace {

const std::string kDir = std::string(SEMAT_TEST_DATA) + "/semat_tiny/";

using CliSemat = semat::test::CliTest;

// The official alpha_crop (179 x 256) bilinearly resized to the image's 300 x 210.
cv::Mat official_alpha_at_original_size() {
  const auto ref = semat::io::load_checkpoint(kDir + "reference_outputs.safetensors");
  const auto& t = ref.at("alpha_crop");
  cv::Mat crop(static_cast<int>(t.shape[0]), static_cast<int>(t.shape[1]), CV_32F,
               const_cast<std::uint8_t*>(t.bytes.data()));
  cv::Mat up;
  cv::resize(crop, up, {300, 210}, 0, 0, cv::INTER_LINEAR);
  return up;
}

}  // namespace

TEST_F(CliSemat, MatteWritesTheOfficialAlphaAtTheOriginalSize) {
  const fs::path out = dir_ / "out";
  const auto r = run("matte " + kDir + "image.png --semat " + kDir +
                         "semat_tiny.pth --device cpu --precision fp32"
                         " --box 12,5,218,209 --box 100,40,290,200 --json --out " +
                         out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* stem : {"alpha", "cutout", "composite", "trimap", "overlay"})
    for (int i = 0; i < 2; ++i)
      EXPECT_TRUE(fs::exists(out / (std::string(stem) + "_" + std::to_string(i) + ".png")))
          << stem << i;
  const auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["instances"].size(), 2u);
  const cv::Mat alpha = semat::io::read_gray8((out / "alpha_0.png").string());
  ASSERT_EQ(alpha.size(), cv::Size(300, 210));
  cv::Mat expected;
  official_alpha_at_original_size().convertTo(expected, CV_8U, 255.0);
  EXPECT_LE(cv::norm(alpha, expected, cv::NORM_INF), 1.0);
  const cv::Mat trimap = semat::io::read_gray8((out / "trimap_0.png").string());
  const int canonical = cv::countNonZero(trimap == 0) + cv::countNonZero(trimap == 128) +
                        cv::countNonZero(trimap == 255);
  EXPECT_EQ(canonical, static_cast<int>(trimap.total()));
}

TEST_F(CliSemat, RefineOnlyChangesTheUnknownBand) {
  const std::string base = "matte " + kDir + "image.png --semat " + kDir +
                           "semat_tiny.pth --device cpu"
                           " --box 12,5,218,209 --out ";
  ASSERT_EQ(run(base + (dir_ / "plain").string()).code, 0);
  const auto r = run(base + (dir_ / "refined").string() + " --refine --alpha-depth 16");
  ASSERT_EQ(r.code, 0) << r.err;
  const cv::Mat plain = semat::io::read_gray8((dir_ / "plain" / "alpha.png").string());
  const cv::Mat refined16 =
      cv::imread((dir_ / "refined" / "alpha.png").string(), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(refined16.type(), CV_16U);
  cv::Mat refined;
  refined16.convertTo(refined, CV_8U, 255.0 / 65535.0);
  const cv::Mat band = semat::io::read_gray8((dir_ / "refined" / "trimap.png").string()) == 128;
  cv::Mat diff;
  cv::absdiff(plain, refined, diff);
  diff.setTo(0, band);
  EXPECT_LE(cv::norm(diff, cv::NORM_INF), 1.0);  // outside the band: quantisation only
}

TEST_F(CliSemat, SamCheckpointGivenAsSematFailsWithoutFiles) {
  const fs::path out = dir_ / "out";
  const auto r = run("matte " + kDir + "image.png --semat " + kDir +
                         "sam_base_tiny.safetensors"
                         " --box 12,5,218,209 --out " +
                         out.string());
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("plain SAM checkpoint"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out / "alpha.png"));
  const auto r2 =
      run("matte " + kDir + "image.png --box 12,5,218,209 --refine --out " + out.string());
  EXPECT_EQ(r2.code, 2) << r2.err;
  EXPECT_NE(r2.err.find("--semat"), std::string::npos) << r2.err;
}

TEST_F(CliSemat, InfoCountsTheBuiltModules) {
  const auto r = run("info --arch semat-tiny --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out)["trainable_parameters"];
  EXPECT_EQ(j["prompt_enhancement"], 65600);
  EXPECT_EQ(j["lora"], 37888);
  EXPECT_EQ(j["matting_tokens_adapter"], 12928);
  EXPECT_EQ(j["matting_decoder"], 393761);
  EXPECT_EQ(j["total"], 510177);
}

// --precision: --json says what ran; bf16 on a CPU without native bf16 units (the test hook
// SEMAT_CPU_BF16=0 stands in for one) is refused in one line before anything is written.
TEST_F(CliSemat, PrecisionIsReportedAndBf16IsRefusedWhereNotNative) {
  const std::string base = "matte " + kDir + "image.png --semat " + kDir + "semat_tiny.pth --device cpu" +
                           " --box 12,5,218,209 --json --out ";
  const auto r = run_precisions(base);
  ASSERT_EQ(r.fp32.code, 0) << r.fp32.err;
  EXPECT_EQ(nlohmann::json::parse(r.fp32.out)["precision"], "fp32");
  expect_bf16_refused(r.bf16, "alpha.png");
  ASSERT_EQ(r.automatic.code, 0) << r.automatic.err;
  EXPECT_EQ(nlohmann::json::parse(r.automatic.out)["precision"], "fp32");
}
