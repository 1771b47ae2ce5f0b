// The matting engine: stage resolution, byte-equality with the matting module's pipeline, model
// stages through an injected box model, prompt errors, concurrent use.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/engine/engine.h"
#include "semat/matting/pipeline.h"
#include "semat/matting/trimap.h"
#include "support/synthetic.h"

namespace {

using semat::engine::BoxModel;
using semat::engine::Engine;
using semat::engine::EngineSpec;
using semat::engine::ModelOutput;
using semat::engine::Prompt;

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() &&
         (a.empty() || cv::norm(a, b, cv::NORM_INF) == 0);
}

bool have_models() { return !semat::engine::available_models().empty(); }

std::string describe(const EngineSpec& s) { return semat::engine::describe(semat::engine::resolve(s)); }

// A SEMat-like model with fixed outputs: the true mask, a band trimap and a blurred alpha, so
// the model stages can be checked without LibTorch.
class FakeModel : public BoxModel {
 public:
  FakeModel(const cv::Mat& alpha, bool makes_alpha = true) : alpha_(alpha), makes_alpha_(makes_alpha) {}
  std::string name() const override { return "fake"; }
  bool trimaps() const override { return makes_alpha_; }
  bool alphas() const override { return makes_alpha_; }
  std::vector<ModelOutput> predict(const cv::Mat& image, const std::string& key, const std::vector<semat::Box>& boxes,
                                   semat::ChannelOrder order) override {
    ++calls;
    last_order = order;
    last_boxes = boxes.size();
    last_key = key;
    std::vector<ModelOutput> out(boxes.size());
    for (auto& o : out) {
      o.mask = alpha_ > 0.5;
      o.trimap = semat::test::true_trimap(alpha_, 3);
      cv::GaussianBlur(alpha_, o.alpha, {0, 0}, 1.5);
    }
    return out;
  }
  std::atomic<int> calls{0};
  size_t last_boxes = 0;
  std::string last_key;
  semat::ChannelOrder last_order = semat::ChannelOrder::kBGR;

 private:
  cv::Mat alpha_;
  bool makes_alpha_;
};

TEST(EngineSpec, ResolvesTheDefaultsAndEveryFlagCombination) {
  EXPECT_EQ(describe({}), "grabcut>rule>closed-form");
  EngineSpec given;
  given.mask = "given";
  EXPECT_EQ(describe(given), "given>rule>closed-form");
  EngineSpec refine;
  refine.refine = true;
  try {
    describe(refine);
    FAIL() << "--refine without a model resolved";
  } catch (const semat::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--semat"), std::string::npos) << e.what();
  }
  EngineSpec bad;
  bad.alpha = "magic";
  EXPECT_THROW(describe(bad), semat::ConfigError);
  bad = {};
  bad.mask = "sam";  // without --sam
  EXPECT_THROW(describe(bad), semat::ConfigError);
  bad = {};
  bad.trimap = "model";
  EXPECT_THROW(describe(bad), semat::ConfigError);
  bad = {};
  bad.batch = -1;
  EXPECT_THROW(describe(bad), semat::ConfigError);

  EngineSpec sam;
  sam.sam = "sam.pth";  // resolve() only names stages; nothing is loaded
  EngineSpec semat;
  semat.semat = "semat.pth";
  semat.sam = "sam.pth";  // base weights of a slim checkpoint
  if (!have_models()) {
    try {
      describe(sam);
      FAIL() << "a build without LibTorch accepted --sam";
    } catch (const semat::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("LibTorch"), std::string::npos) << e.what();
    }
    return;
  }
  EXPECT_EQ(describe(sam), "sam>rule>closed-form");
  EXPECT_EQ(describe(semat), "semat>semat>semat");
  semat.refine = true;
  EXPECT_EQ(describe(semat), "semat>semat>semat+refine");
  semat.refine = false;
  semat.alpha = "closed-form";
  EXPECT_EQ(describe(semat), "semat>semat>closed-form");
  semat.alpha = "auto";
  semat.mask = "given";
  EXPECT_EQ(describe(semat), "given>rule>semat");
  sam.mask = "grabcut";  // the SAM checkpoint would be loaded for nothing
  EXPECT_THROW(describe(sam), semat::ConfigError);
  sam.mask = "given";
  EXPECT_THROW(describe(sam), semat::ConfigError);
}

TEST(EngineSpec, VitMatteIsTheAlphaStageOfAnyTrimap) {
  EngineSpec need;
  need.alpha = "vitmatte";  // without its checkpoint
  try {
    describe(need);
    FAIL() << "--alpha vitmatte without --vitmatte resolved";
  } catch (const semat::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--vitmatte CKPT"), std::string::npos) << e.what();
  }
  EngineSpec v;
  v.vitmatte = "vitmatte.pth";  // resolve() only names stages; nothing is loaded
  if (!have_models()) {
    EXPECT_THROW(describe(v), semat::ConfigError);
    return;
  }
  EXPECT_EQ(describe(v), "grabcut>rule>vitmatte");
  v.alpha = "closed-form";  // the checkpoint would be loaded for nothing
  EXPECT_THROW(describe(v), semat::ConfigError);
  v.alpha = "vitmatte";
  v.mask = "given";
  EXPECT_EQ(describe(v), "given>rule>vitmatte");
  v.mask = "auto";
  v.sam = "sam.pth";
  EXPECT_EQ(describe(v), "sam>rule>vitmatte");
  v.sam.clear();
  v.semat = "semat.pth";  // SEMat's own trimap goes through the network
  EXPECT_EQ(describe(v), "semat>semat>vitmatte");
  v.refine = true;  // refine sharpens a model's alpha, not the network's
  EXPECT_THROW(describe(v), semat::ConfigError);
  v.refine = false;
  v.vitmatte_max_pixels = -1;
  EXPECT_THROW(describe(v), semat::ConfigError);
  EngineSpec d;
  d.diffmatte = "diffmatte.pth";
  EXPECT_EQ(describe(d), "grabcut>rule>diffmatte");
  d.vitmatte = "vitmatte.pth";  // two alpha networks: one would be loaded for nothing
  EXPECT_THROW(describe(d), semat::ConfigError);
  d.vitmatte.clear();
  d.diffmatte_steps = 0;
  EXPECT_THROW(describe(d), semat::ConfigError);
}

TEST(Engine, ClassicalBoxPipelineIsTheMattingModulesByteForByte) {
  const auto scene = semat::test::make_scene(120, 100, 5, 10);
  const Engine engine(EngineSpec{});
  EXPECT_FALSE(engine.has_model());
  const auto r = engine.run(scene.image, {Prompt::from_box(scene.box)});
  ASSERT_EQ(r.size(), 1u);
  const auto ref = semat::matting::matte_from_box(scene.image, scene.box);
  EXPECT_TRUE(same(r[0].mask, ref.mask));
  EXPECT_TRUE(same(r[0].trimap, ref.trimap));
  EXPECT_TRUE(same(r[0].alpha, ref.alpha));
  EXPECT_TRUE(same(r[0].foreground, ref.foreground));
  EXPECT_EQ(r[0].omega, ref.omega);
  ASSERT_TRUE(r[0].box.has_value());
  EXPECT_EQ(r[0].box->x0, scene.box.x0);
  EXPECT_GT(semat::test::iou_half(r[0].alpha, scene.alpha), 0.9);
}

TEST(Engine, UserTrimapIsPureClosedForm) {
  const auto scene = semat::test::make_scene(96, 80, 2);
  const cv::Mat trimap = semat::test::true_trimap(scene.alpha, 2);
  Prompt p;
  p.trimap = trimap;
  const auto r = Engine(EngineSpec{}).run(scene.image, {p});
  const auto ref = semat::matting::matte_from_trimap(scene.image, trimap);
  EXPECT_TRUE(same(r[0].alpha, ref.alpha));
  EXPECT_TRUE(same(r[0].trimap, trimap));
  EXPECT_TRUE(r[0].mask.empty());
  EXPECT_LT(semat::test::mse(r[0].alpha, scene.alpha), 1e-3);
}

TEST(Engine, GivenMasksSolveOnTheTrimapsCrop) {
  // The builder's set-up: fused masks given, rule trimap, closed-form on the crop.
  auto scene = semat::test::make_scene(160, 140, 7, 10);
  cv::Mat big(300, 320, CV_8UC3, cv::Scalar(40, 50, 60));
  scene.image.copyTo(big(cv::Rect(150, 150, 160, 140)));
  cv::Mat alpha(big.size(), CV_32F, cv::Scalar(0));
  scene.alpha.copyTo(alpha(cv::Rect(150, 150, 160, 140)));
  EngineSpec spec;
  spec.mask = "given";
  Prompt p;
  p.mask = alpha > 0.5;
  EngineSpec cropped = spec;
  cropped.classical.crop_margin = 8;
  const auto full = Engine(spec).run(big, {p});
  const auto crop = Engine(cropped).run(big, {p});
  EXPECT_TRUE(same(full[0].trimap, crop[0].trimap));
  EXPECT_EQ(full[0].omega, crop[0].omega);
  EXPECT_LT(cv::norm(full[0].alpha, crop[0].alpha, cv::NORM_INF), 0.02);
  EXPECT_EQ(cv::countNonZero(crop[0].alpha(cv::Rect(0, 0, 120, 120))), 0);
  EXPECT_GT(semat::test::iou_half(crop[0].alpha, alpha), 0.9);
  // "given" without a mask is refused, naming the prompt.
  Prompt none = Prompt::from_box(scene.box, "instance 3");
  try {
    Engine(spec).run(big, {none});
    FAIL();
  } catch (const semat::InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("instance 3: ", 0), 0u) << e.what();
  }
}

TEST(Engine, ModelStagesTakeTheModelsTrimapAndAlphaAndRefineOnlyTheBand) {
  const auto scene = semat::test::make_scene(120, 100, 9, 10);
  auto model = std::make_shared<FakeModel>(scene.alpha);
  const Engine plain(EngineSpec{}, model);
  EXPECT_EQ(plain.description(), "fake>fake>fake");
  EXPECT_EQ(plain.alpha_name(), "fake");
  const auto a = plain.run(scene.image, {Prompt::from_box(scene.box), Prompt::from_box(scene.box)}, "img-1");
  EXPECT_EQ(model->calls, 1);  // every box of the call in one model call
  EXPECT_EQ(model->last_boxes, 2u);
  EXPECT_EQ(model->last_key, "img-1");
  cv::Mat blurred;
  cv::GaussianBlur(scene.alpha, blurred, {0, 0}, 1.5);
  EXPECT_TRUE(same(a[0].alpha, blurred));
  EXPECT_TRUE(same(a[0].trimap, semat::test::true_trimap(scene.alpha, 3)));
  EXPECT_FALSE(a[0].foreground.empty());

  EngineSpec spec;
  spec.refine = true;
  const Engine refined(spec, model);
  EXPECT_EQ(refined.description(), "fake>fake>fake+refine");
  const auto r = refined.run(scene.image, {Prompt::from_box(scene.box)});
  const cv::Mat band = a[0].trimap == semat::matting::kUnknown;
  cv::Mat diff;
  cv::absdiff(r[0].alpha, a[0].alpha, diff);
  EXPECT_EQ(cv::countNonZero((diff > 0) & ~band), 0);  // outside the band: the model's alpha
  EXPECT_GT(cv::countNonZero((diff > 1e-3) & band), 0);
  EXPECT_TRUE(same(r[0].alpha, semat::matting::refine_in_band(scene.image, blurred, a[0].trimap)));
  // Sharper against the true alpha than the blurred model output.
  EXPECT_LT(semat::test::mse(r[0].alpha, scene.alpha), semat::test::mse(a[0].alpha, scene.alpha));
}

// The engine hands its image's channel order to the model and the alpha stage; a foreground
// comes out in the image's order. With the model's alpha (no classical solve) the RGB run's
// results are the BGR run's, with the foreground's channels swapped.
TEST(Engine, ModelsAreToldTheChannelOrderAndTheForegroundKeepsIt) {
  const auto scene = semat::test::make_scene(120, 100, 9, 10);
  auto model = std::make_shared<FakeModel>(scene.alpha);
  const Engine engine(EngineSpec{}, model);
  const auto bgr_run = engine.run(scene.image, {Prompt::from_box(scene.box)});
  EXPECT_EQ(model->last_order, semat::ChannelOrder::kBGR);
  cv::Mat rgb;
  cv::cvtColor(scene.image, rgb, cv::COLOR_BGR2RGB);
  const auto rgb_run = engine.run(rgb, {Prompt::from_box(scene.box)}, "", semat::ChannelOrder::kRGB);
  EXPECT_EQ(model->last_order, semat::ChannelOrder::kRGB);
  EXPECT_TRUE(same(rgb_run[0].alpha, bgr_run[0].alpha));
  cv::Mat swapped;
  cv::cvtColor(bgr_run[0].foreground, swapped, cv::COLOR_BGR2RGB);
  ASSERT_EQ(rgb_run[0].foreground.type(), swapped.type());
  EXPECT_LE(cv::norm(rgb_run[0].foreground, swapped, cv::NORM_INF), 1e-5);
  // The foreground's warm subject is red in RGB order: not the BGR run's layout.
  EXPECT_GT(cv::norm(rgb_run[0].foreground, bgr_run[0].foreground, cv::NORM_INF), 0.1);
}

// The classical stages read the channels alike: a channel-swapped image gives the same matte up
// to rounding (colour statistics are computed in memory order).
TEST(Engine, ClassicalStagesGiveTheSameMatteInEitherOrderUpToRounding) {
  const auto scene = semat::test::make_scene(120, 100, 9, 10);
  const Engine engine(EngineSpec{});
  cv::Mat rgb;
  cv::cvtColor(scene.image, rgb, cv::COLOR_BGR2RGB);
  const auto a = engine.run(scene.image, {Prompt::from_box(scene.box)});
  const auto b = engine.run(rgb, {Prompt::from_box(scene.box)}, "", semat::ChannelOrder::kRGB);
  EXPECT_LE(cv::norm(a[0].alpha, b[0].alpha, cv::NORM_INF), 2.0 / 255);
  EXPECT_LE(cv::countNonZero(cv::abs(a[0].alpha - b[0].alpha) > 1e-6), a[0].alpha.total() / 100);
}

TEST(Engine, MaskOnlyModelsFeedTheRuleAndClosedForm) {
  const auto scene = semat::test::make_scene(120, 100, 3, 10);
  auto model = std::make_shared<FakeModel>(scene.alpha, /*makes_alpha=*/false);
  const Engine engine(EngineSpec{}, model);
  EXPECT_EQ(engine.description(), "fake>rule>closed-form");
  const auto r = engine.run(scene.image, {Prompt::from_box(scene.box)});
  const auto ref = semat::matting::matte_from_mask(scene.image, scene.alpha > 0.5, scene.box);
  EXPECT_TRUE(same(r[0].alpha, ref.alpha));
  EXPECT_TRUE(same(r[0].trimap, ref.trimap));
  // A model that makes no alpha cannot supply one.
  EngineSpec want_alpha;
  want_alpha.alpha = "model";
  EXPECT_THROW(Engine(want_alpha, model), semat::ConfigError);
}

TEST(Engine, BadPromptsAreRefusedWithTheirLabel) {
  const auto scene = semat::test::make_scene(64, 64, 1);
  const Engine engine(EngineSpec{});
  try {
    engine.run(scene.image, {Prompt::from_box(semat::Box{10, 10, 90, 40}, "--box 2")});
    FAIL();
  } catch (const semat::InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--box 2: ", 0), 0u) << e.what();
  }
  Prompt wrong;
  wrong.trimap = cv::Mat(10, 10, CV_8U, cv::Scalar(128));
  EXPECT_THROW(engine.run(scene.image, {wrong}), semat::InvalidArgument);
  EXPECT_THROW(engine.run(scene.image, {Prompt{}}), semat::InvalidArgument);
  EXPECT_THROW(engine.run(cv::Mat(), {Prompt::from_box(scene.box)}), semat::InvalidArgument);
  // GrabCut's own data errors keep their type and gain the label.
  const cv::Mat flat(64, 64, CV_8UC3, cv::Scalar(90, 90, 90));
  try {
    engine.run(flat, {Prompt::from_box(semat::Box{20, 20, 22, 22}, "--box 1")});
  } catch (const semat::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--box 1: ", 0), 0u) << e.what();
  }
}

TEST(Engine, OneEngineServesConcurrentCallers) {
  const auto scene = semat::test::make_scene(96, 80, 4, 8);
  const Engine engine(EngineSpec{});
  const auto ref = engine.run(scene.image, {Prompt::from_box(scene.box)});
  std::vector<std::thread> threads;
  std::atomic<int> equal{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      const auto r = engine.run(scene.image, {Prompt::from_box(scene.box)});
      if (same(r[0].alpha, ref[0].alpha)) ++equal;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(equal, 4);
}

}  // namespace
