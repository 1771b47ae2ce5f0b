// Runs the semat executable the way a person does and checks exit codes, the one-line errors and
// that a failed run leaves no output files behind.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <opencv2/imgcodecs.hpp>

#include "semat/io/image_io.h"
#include "support/synthetic.h"
#include "support/cli.h"

namespace fs = std::filesystem;

namespace {

using semat::test::CliRun;

class CliMatte : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("semat_e2e_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    scene_ = semat::test::make_scene(160, 128, 9, 12);
    image_ = (dir_ / "scene.png").string();
    cv::imwrite(image_, scene_.image);
    out_ = (dir_ / "out").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliRun run(const std::string& args) { return semat::test::run_cli(SEMAT_BINARY, args, dir_); }

  // The run failed with one line on stderr mentioning `needle`, and `out_` holds no file.
  void expect_clean_failure(const std::string& args, const std::string& needle) {
    const CliRun r = run(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
    if (fs::exists(out_)) {
      EXPECT_TRUE(fs::is_empty(out_)) << args;
    }
  }

  std::string box_arg() const { return "--box " + scene_.box.str(); }

  fs::path dir_;
  semat::test::Scene scene_;
  std::string image_, out_;
};

TEST_F(CliMatte, WritesAllOutputsForOneBox) {
  const CliRun r = run("matte " + image_ + " " + box_arg() + " --out " + out_);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"alpha", "cutout", "composite", "trimap", "overlay"})
    EXPECT_TRUE(fs::exists(fs::path(out_) / (std::string(f) + ".png"))) << f;
  const cv::Mat alpha = semat::io::read_unit_gray(out_ + "/alpha.png");
  EXPECT_GT(semat::test::iou_half(alpha, scene_.alpha), 0.9);
  const cv::Mat cut = cv::imread(out_ + "/cutout.png", cv::IMREAD_UNCHANGED);
  EXPECT_EQ(cut.channels(), 4);
  EXPECT_EQ(std::distance(fs::directory_iterator(out_), fs::directory_iterator()), 5);
}

TEST_F(CliMatte, SeveralBoxesGetSuffixesAndSixteenBitAlpha) {
  const CliRun r = run("matte " + image_ + " " + box_arg() + " " + box_arg() +
                    " --alpha-depth 16 --background white --json --out " + out_);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"alpha_0", "alpha_1", "cutout_1", "composite_0", "trimap_1", "overlay_0"})
    EXPECT_TRUE(fs::exists(fs::path(out_) / (std::string(f) + ".png"))) << f;
  EXPECT_EQ(cv::imread(out_ + "/alpha_0.png", cv::IMREAD_UNCHANGED).depth(), CV_16U);
  EXPECT_NE(r.out.find("\"instances\""), std::string::npos);
}

TEST_F(CliMatte, TrimapModeSkipsTheBox) {
  const std::string tri = (dir_ / "tri.png").string();
  cv::imwrite(tri, semat::test::true_trimap(scene_.alpha));
  const CliRun r = run("matte " + image_ + " --trimap " + tri + " --out " + out_);
  ASSERT_EQ(r.code, 0) << r.err;
  const cv::Mat alpha = semat::io::read_unit_gray(out_ + "/alpha.png");
  EXPECT_LT(semat::test::mse(alpha, scene_.alpha), 1e-3);
}

TEST_F(CliMatte, MissingImage) {
  expect_clean_failure("matte " + (dir_ / "nope.png").string() + " " + box_arg() + " --out " + out_, "nope.png");
}

TEST_F(CliMatte, TruncatedImage) {
  const auto bytes = semat::io::read_file(image_);
  const std::string cut = (dir_ / "cut.png").string();
  std::ofstream(cut, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size() / 2);
  expect_clean_failure("matte " + cut + " " + box_arg() + " --out " + out_, "truncated");
}

TEST_F(CliMatte, NotAnImage) {
  const std::string txt = (dir_ / "notes.png").string();
  std::ofstream(txt) << "hello";
  expect_clean_failure("matte " + txt + " " + box_arg() + " --out " + out_, "notes.png");
}

TEST_F(CliMatte, TrimapSizeMismatch) {
  const std::string tri = (dir_ / "small_tri.png").string();
  cv::imwrite(tri, cv::Mat(10, 10, CV_8U, cv::Scalar(128)));
  expect_clean_failure("matte " + image_ + " --trimap " + tri + " --out " + out_, "same size");
}

TEST_F(CliMatte, TrimapWithoutUnknownOrForeground) {
  const std::string tri = (dir_ / "tri.png").string();
  cv::Mat t(scene_.image.size(), CV_8U, cv::Scalar(0));
  t(cv::Rect(10, 10, 20, 20)).setTo(255);
  cv::imwrite(tri, t);
  expect_clean_failure("matte " + image_ + " --trimap " + tri + " --out " + out_, "no unknown");
  t.setTo(128);
  cv::imwrite(tri, t);
  expect_clean_failure("matte " + image_ + " --trimap " + tri + " --out " + out_, "no foreground");
}

TEST_F(CliMatte, BadBoxes) {
  expect_clean_failure("matte " + image_ + " --box 10,10,500,100 --out " + out_, "outside");
  expect_clean_failure("matte " + image_ + " --box 10,10,10,100 --out " + out_, "zero area");
  expect_clean_failure("matte " + image_ + " --box 90,10,10,100 --out " + out_, "inverted");
  expect_clean_failure("matte " + image_ + " --box 10,ten,50,100 --out " + out_, "not a number");
  expect_clean_failure("matte " + image_ + " --out " + out_, "--box");
  // The second box is bad: nothing of the first is written either.
  expect_clean_failure("matte " + image_ + " " + box_arg() + " --box 1,1,900,2 --out " + out_, "--box 2");
}

TEST_F(CliMatte, UnwritableOutputFolder) {
  const std::string file = (dir_ / "a_file").string();
  std::ofstream(file) << "x";
  const CliRun r = run("matte " + image_ + " " + box_arg() + " --out " + file + "/sub");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("output folder"), std::string::npos) << r.err;
}

TEST_F(CliMatte, BadOptionValues) {
  expect_clean_failure("matte " + image_ + " " + box_arg() + " --alpha-depth 12 --out " + out_, "alpha-depth");
  expect_clean_failure("matte " + image_ + " " + box_arg() + " --background nosuchcolour --out " + out_, "--background");
}

}  // namespace
