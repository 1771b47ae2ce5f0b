// The learned prior as the engine's coarse-mask stage (--prior isnet|grabcut|auto), with
// synthetic probability models standing in for IS-Net.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/engine/engine.h"
#include "semat/engine/prior_model.h"
#include "semat/matting/learned_prior.h"
#include "support/synthetic.h"

namespace {

using semat::engine::Engine;
using semat::engine::EngineSpec;
using semat::engine::ProbabilityModel;
using semat::engine::Prompt;
namespace fs = std::filesystem;

// Returns a fixed full-image map cut to the crop the engine is expected to ask about.
class MapModel : public ProbabilityModel {
 public:
  MapModel(cv::Mat map, cv::Rect crop) : map_(std::move(map)), crop_(crop) {}
  std::string name() const override { return "isnet"; }
  cv::Mat probability(const cv::Mat& crop, semat::ChannelOrder) override {
    ++calls;
    EXPECT_EQ(crop.size(), crop_.size());
    return map_(crop_).clone();
  }
  int calls = 0;

 private:
  cv::Mat map_;
  cv::Rect crop_;
};

std::string describe(const EngineSpec& s) { return semat::engine::describe(semat::engine::resolve(s)); }

bool have_isnet_runner() {
  const auto m = semat::engine::available_models();
  return std::find(m.begin(), m.end(), "isnet") != m.end();
}

// SEMAT_MODELS pointing at a fresh folder for the test's lifetime (restored after).
class ModelsDir {
 public:
  ModelsDir() : dir_(fs::temp_directory_path() / ("semat_prior_models_" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    if (const char* old = std::getenv("SEMAT_MODELS")) old_ = old, had_ = true;
    ::setenv("SEMAT_MODELS", dir_.c_str(), 1);
  }
  ~ModelsDir() {
    if (had_) ::setenv("SEMAT_MODELS", old_.c_str(), 1);
    else ::unsetenv("SEMAT_MODELS");
    fs::remove_all(dir_);
  }
  // A sparse file of `size` bytes under the IS-Net model's name (resolve() checks the size only).
  void place_isnet(std::uintmax_t size) const {
    const fs::path f = dir_ / "isnet_medium_fp16.onnx";
    std::ofstream(f, std::ios::binary).put('\0');
    fs::resize_file(f, size);
  }

 private:
  fs::path dir_;
  std::string old_;
  bool had_ = false;
};

TEST(PriorStage, FlagsResolveAndContradictionsAreRefused) {
  EngineSpec s;
  s.prior = "grabcut";
  EXPECT_EQ(describe(s), "grabcut>rule>closed-form");
  s.mask = "grabcut";
  EXPECT_EQ(describe(s), "grabcut>rule>closed-form");
  s.mask = "given";
  EXPECT_THROW(describe(s), semat::ConfigError);
  EngineSpec bad;
  bad.prior = "magic";
  EXPECT_THROW(describe(bad), semat::ConfigError);
  // No IS-Net installed (an empty models folder): --prior isnet says why, auto is GrabCut.
  const ModelsDir empty;
  EngineSpec isnet;
  isnet.prior = "isnet";
  try {
    describe(isnet);
    FAIL() << "--prior isnet resolved without a model";
  } catch (const semat::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("IS-Net"), std::string::npos) << e.what();
  }
  EXPECT_EQ(describe(EngineSpec{}), "grabcut>rule>closed-form");
  // --prior grabcut with a SAM checkpoint: the checkpoint would go unused.
  EngineSpec both;
  both.prior = "grabcut";
  both.sam = "sam.pth";
  EXPECT_THROW(describe(both), semat::ConfigError);
}

TEST(PriorStage, AutoPicksAnInstalledIsNetAndIgnoresATruncatedFile) {
  const ModelsDir dir;
  dir.place_isnet(1000);  // truncated: ignored with a warning
  EXPECT_EQ(describe(EngineSpec{}), "grabcut>rule>closed-form");
  dir.place_isnet(88188479);
  if (!have_isnet_runner()) {
    EXPECT_EQ(describe(EngineSpec{}), "grabcut>rule>closed-form");
    GTEST_SKIP() << "this build has no IS-Net runner";
  }
  EXPECT_EQ(describe(EngineSpec{}), "isnet>isnet>closed-form");
  EngineSpec g;
  g.prior = "grabcut";
  EXPECT_EQ(describe(g), "grabcut>rule>closed-form");
  EngineSpec given;
  given.mask = "given";
  EXPECT_EQ(describe(given), "given>rule>closed-form");
  // A SAM checkpoint still takes the mask stage; the installed IS-Net is then not an error.
  EngineSpec sam;
  sam.sam = "sam.pth";
  const auto models = semat::engine::available_models();
  if (std::find(models.begin(), models.end(), "sam") != models.end()) {
    EXPECT_EQ(describe(sam), "sam>rule>closed-form");
  }
}

TEST(PriorStage, InjectedProbabilityModelIsTheMaskAndTrimapStage) {
  const semat::test::Scene s = semat::test::make_scene(200, 160, 7, 0);
  const cv::Rect crop = semat::matting::prior_crop(s.image.size(), s.box);
  cv::Mat p;
  cv::GaussianBlur(s.alpha, p, {0, 0}, 1.0);
  auto pm = std::make_shared<MapModel>(p, crop);
  EngineSpec spec;
  const Engine engine(spec, semat::engine::make_prior_box_model(pm, spec.prior_params));
  EXPECT_EQ(engine.description(), "isnet>isnet>closed-form");
  const auto r = engine.run(s.image, {Prompt::from_box(s.box)});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(pm->calls, 1);
  // The engine's matte is the matting module's learned pipeline.
  const semat::matting::MatteResult ref = semat::matting::matte_from_prior(s.image, s.box, p(crop), crop);
  EXPECT_EQ(cv::norm(r[0].mask, ref.mask, cv::NORM_INF), 0);
  EXPECT_EQ(cv::norm(r[0].trimap, ref.trimap, cv::NORM_INF), 0);
  EXPECT_LT(cv::norm(r[0].alpha, ref.alpha, cv::NORM_INF), 1e-6);
  EXPECT_GT(semat::test::iou_half(r[0].alpha, s.alpha), 0.95);
  // A user trimap still wins, and then the model is not asked.
  Prompt t = Prompt::from_box(s.box);
  t.trimap = semat::test::true_trimap(s.alpha);
  engine.run(s.image, {t});
  EXPECT_EQ(pm->calls, 1);
}

TEST(PriorStage, WrongObjectMapThroughTheEngine) {
  const semat::test::Scene s = semat::test::make_scene(200, 160, 8, 0);
  const cv::Rect crop = semat::matting::prior_crop(s.image.size(), s.box);
  const cv::Rect box = s.box.pixel_rect();
  cv::Mat head = s.alpha.clone();
  head.rowRange(box.y + box.height / 2, head.rows).setTo(0);
  EngineSpec spec;
  const Engine engine(spec, semat::engine::make_prior_box_model(std::make_shared<MapModel>(head, crop)));
  const auto r = engine.run(s.image, {Prompt::from_box(s.box)});
  EXPECT_GT(semat::test::iou_half(r[0].alpha, s.alpha), 0.9);
}

TEST(PriorStage, AModelReturningTheWrongSizeIsAStateError) {
  const semat::test::Scene s = semat::test::make_scene(120, 100, 9, 0);
  class Bad : public ProbabilityModel {
   public:
    std::string name() const override { return "isnet"; }
    cv::Mat probability(const cv::Mat& crop, semat::ChannelOrder) override {
      return cv::Mat::zeros(crop.rows, crop.cols + 1, CV_32F);
    }
  };
  const Engine engine(EngineSpec{}, semat::engine::make_prior_box_model(std::make_shared<Bad>()));
  EXPECT_THROW(engine.run(s.image, {Prompt::from_box(s.box)}), semat::StateError);
}

}  // namespace
