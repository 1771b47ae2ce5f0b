// `semat segment` / `semat matte` / `semat info` on SAM 2 (tests/data/sam2_tiny): the checkpoint
// is recognised by its keys (SAM 2.0 and 2.1 layouts), the dumped tensors and masks equal the
// official SAM2ImagePredictor's, and SAM 2 misuse fails with one line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "semat/io/checkpoint.h"
#include "support/cli_test.h"

namespace fs = std::filesystem;

namespace {

const std::string kDir = std::string(SEMAT_TEST_DATA) + "/sam2_tiny/";

double max_abs_diff(const semat::io::TensorData& a, const semat::io::TensorData& b) {
  EXPECT_EQ(a.shape, b.shape) << a.name << " vs " << b.name;
  const auto* x = reinterpret_cast<const float*>(a.bytes.data());
  const auto* y = reinterpret_cast<const float*>(b.bytes.data());
  double m = 0;
  for (int64_t i = 0; i < a.numel() && i < b.numel(); ++i) m = std::max(m, std::abs(double(x[i]) - y[i]));
  return m;
}

using CliSam2 = semat::test::CliTest;

TEST_F(CliSam2, SegmentDumpsTheOfficialPredictorOutputsForBothLayouts) {
  const auto ref = semat::io::load_checkpoint(kDir + "reference_outputs.safetensors");
  struct Case {
    std::string name, args;
  };
  const std::vector<Case> cases = {{"box_multi", " --box 21,5,160,155 --multimask"},
                                   {"box_single", " --box 21,5,160,155"},
                                   {"box_point_single", " --box 21,5,160,155 --point 90.5,80,0"}};
  for (const std::string ckpt : {"sam2_tiny.pth", "sam2.1_tiny.pth"}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(ckpt + " " + c.name);
      const fs::path out = dir_ / (ckpt + c.name);
      // float32: the reference (auto would run the trunk in bf16 on CPUs with bf16 units).
      const auto r = run("segment " + kDir + "image.png --sam " + kDir + ckpt + c.args + " --precision fp32 --out " + out.string() +
                         " --dump-tensors " + (out / "t.safetensors").string());
      ASSERT_EQ(r.code, 0) << r.err;
      EXPECT_NE(r.out.find("sam2_tiny"), std::string::npos) << r.out;
      const auto ours = semat::io::load_checkpoint((out / "t.safetensors").string());
      for (const char* t : {"input_tensor", "image_embed", "high_res_feat0", "high_res_feat1"})
        EXPECT_LE(max_abs_diff(ours.at(t), ref.at(t)), 1e-4) << t;
      EXPECT_LE(max_abs_diff(ours.at("low_res_logits"), ref.at(c.name + ".low_res_logits")), 1e-4);
      EXPECT_LE(max_abs_diff(ours.at("mask_logits"), ref.at(c.name + ".mask_logits")), 1e-4);
      EXPECT_LE(max_abs_diff(ours.at("iou_predictions"), ref.at(c.name + ".iou_predictions")), 1e-4);
      // The PNG is the thresholded logits (> 0).
      const fs::path png = out / (c.name == "box_multi" ? "mask_0.png" : "mask.png");
      const cv::Mat mask = cv::imread(png.string(), cv::IMREAD_GRAYSCALE);
      ASSERT_FALSE(mask.empty()) << png;
      const auto& logits = ref.at(c.name + ".mask_logits");
      const auto* l = reinterpret_cast<const float*>(logits.bytes.data());
      int64_t fg = 0, differ = 0;
      for (int y = 0; y < mask.rows; ++y)
        for (int x = 0; x < mask.cols; ++x) {
          const float v = l[y * mask.cols + x];
          fg += v > 0;
          differ += (mask.at<uchar>(y, x) > 0) != (v > 0) && std::abs(v) > 1e-3f;
        }
      EXPECT_GT(fg, 0);
      EXPECT_EQ(differ, 0);
    }
  }
}

TEST_F(CliSam2, MatteTakesTheSam2MaskThroughTheEngine) {
  const fs::path out = dir_ / "matte";
  const auto r = run("matte " + kDir + "image.png --sam " + kDir + "sam2.1_tiny.pth --box 21,5,160,155 --json --out " +
                     out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  // The "sam" row took the SAM 2.1 checkpoint (it refused SAM 2 before) and made the mask.
  EXPECT_EQ(nlohmann::json::parse(r.out)["engine"], "sam>rule>closed-form");
  EXPECT_TRUE(fs::exists(out / "alpha.png"));
}

TEST_F(CliSam2, Sam2MisuseFailsWithOneLine) {
  const fs::path out = dir_ / "out";
  const std::string base = "segment " + kDir + "image.png --sam " + kDir + "sam2_tiny.pth --out " + out.string();
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {base + " --box 21,5,160,155 --hq-token-only", "SAM 2"},
           {base + " --box 21,5,160,155 --model-type vit_b", "vit_b"},
           {base + " --box 21,5,160,155 --model-type sam2_hiera_t", "mis-shaped"},
           {base + " --box 0,0,400,10", "outside"}}) {
    const auto r = run(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  }
}

// --precision reaches SAM 2 as SAM: the summary line says what ran; bf16 on a CPU without bf16
// units (the test hook SEMAT_CPU_BF16=0) is refused in one line, auto runs float32 there.
TEST_F(CliSam2, SegmentPrecisionIsReportedAndBf16IsRefusedWhereNotNative) {
  const std::string base = "segment " + kDir + "image.png --sam " + kDir + "sam2_tiny.pth --device cpu" +
                           " --box 21,5,160,155 --out ";
  const auto r = run_precisions(base);
  ASSERT_EQ(r.fp32.code, 0) << r.fp32.err;
  EXPECT_NE(r.fp32.out.find(" in fp32"), std::string::npos) << r.fp32.out;
  expect_bf16_refused(r.bf16, "mask.png");
  ASSERT_EQ(r.automatic.code, 0) << r.automatic.err;
  EXPECT_NE(r.automatic.out.find(" in fp32"), std::string::npos) << r.automatic.out;
}

TEST_F(CliSam2, InfoReportsTheImageModelAndTheVideoPartApart) {
  const auto r = run("info --arch sam2-hiera-t --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  // Sums of the official key list (tests/data/sam2_tiny/keys_sam2_hiera_t.txt): 38,946,242 in
  // all, 7,505,265 of them in the video-only modules.
  EXPECT_EQ(j["official_full_model_parameters"].get<int64_t>(), 38946242);
  EXPECT_EQ(j["all_parameters"].get<int64_t>(), 31440977);
  EXPECT_EQ(j["video_only_parameters_not_built"].get<int64_t>(), 7505265);
  EXPECT_EQ(j["backbone"]["stages"], nlohmann::json({1, 2, 7, 2}));
}

}  // namespace
