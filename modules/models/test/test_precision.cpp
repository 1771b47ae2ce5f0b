// --precision: the bf16 encoders against the float32 reference on the tiny random-weight
// fixtures (random weights are harsher on bf16 than trained ones: no structure to keep the
// logits away from the decision thresholds), and the detection / refusal logic.
// Float32 stays the reference: every parity test elsewhere runs in float32; the bounds here were
// measured on the fixtures (figures in the comments) and given about 2-3x margin.
// Tests of the bf16 path skip, with the reason, on CPUs without native bf16 units.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include <opencv2/core.hpp>

#include "semat/core/error.h"
#include "semat/io/image_io.h"
#include "semat/io/checkpoint.h"
#include "semat/models/internal/sam/image_encoder.h"
#include "semat/models/internal/semat_net/build.h"
#include "semat/models/internal/semat_net/lora.h"
#include "semat/models/internal/semat_net/semat_model.h"
#include "semat/models/precision.h"
#include "semat/models/sam2_predictor.h"
#include "semat/models/sam_predictor.h"
#include "semat/models/semat_predictor.h"

namespace semat::models {
namespace {

const std::string kData = std::string(SEMAT_TEST_DATA);

// Sets SEMAT_CPU_BF16 for one scope and restores the previous value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

bool native_bf16() {
  ScopedEnv real("SEMAT_CPU_BF16", nullptr);
  return cpu_has_native_bf16();
}

#define SKIP_WITHOUT_BF16()                                                                     \
  if (!native_bf16())                                                                           \
  GTEST_SKIP() << "this CPU has no native bf16 units (AMX-BF16 / AVX512-BF16): the bf16 path " \
                  "is refused here, its accuracy cannot be measured"

// Intersection over union of two 0/255 masks (1 when both are empty).
double iou(const cv::Mat& a, const cv::Mat& b) {
  const double inter = cv::countNonZero(a & b), uni = cv::countNonZero(a | b);
  return uni == 0 ? 1.0 : inter / uni;
}

double max_abs(const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_INF); }
double mean_abs(const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_L1) / a.total(); }

// Max abs difference of two float32 tensors (image_tensors() entries) relative to the first's
// largest magnitude.
double relative_max_error(const io::TensorData& ref, const io::TensorData& low) {
  EXPECT_EQ(ref.name, low.name);
  EXPECT_EQ(ref.bytes.size(), low.bytes.size()) << ref.name;
  const cv::Mat a(1, static_cast<int>(ref.bytes.size() / 4), CV_32F, const_cast<uint8_t*>(ref.bytes.data()));
  const cv::Mat b(1, static_cast<int>(low.bytes.size() / 4), CV_32F, const_cast<uint8_t*>(low.bytes.data()));
  double lo, hi;
  cv::minMaxLoc(cv::abs(a), &lo, &hi);
  return max_abs(a, b) / hi;
}

}  // namespace

TEST(Precision, TestHookRefusesBf16WithOneLine) {
  ScopedEnv off("SEMAT_CPU_BF16", "0");
  EXPECT_FALSE(cpu_has_native_bf16());
  EXPECT_EQ(resolve_precision("auto", "cpu"), Precision::kFloat32);
  EXPECT_EQ(resolve_precision("fp32", "cpu"), Precision::kFloat32);
  try {
    resolve_precision("bf16", "cpu");
    FAIL() << "bf16 accepted on a CPU reported without bf16 units";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find("--precision bf16"), std::string::npos) << what;
    EXPECT_NE(what.find("AVX512-BF16"), std::string::npos) << what;
    EXPECT_NE(what.find("--precision fp32"), std::string::npos) << what;
  }
  // The predictors refuse it the same way, before any work.
  SamPredictor::Options o;
  o.device = "cpu";
  o.precision = "bf16";
  EXPECT_THROW(SamPredictor(kData + "/sam_tiny/sam_tiny.pth", o), ConfigError);
}

// SAM 2 (and SEMat SAM2) follow the same rule since the Hiera trunk has a bf16 path: auto falls
// back to float32 without bf16 units, an explicit bf16 is refused in one line.
TEST(Precision, Sam2RefusesBf16WithoutUnitsAndAutoRunsFloat32) {
  ScopedEnv off("SEMAT_CPU_BF16", "0");
  Sam2Predictor::Options o;
  o.device = "cpu";
  o.precision = "auto";
  EXPECT_EQ(Sam2Predictor(kData + "/sam2_tiny/sam2_tiny.pth", o).precision(), "fp32");
  o.precision = "bf16";
  try {
    Sam2Predictor p(kData + "/sam2_tiny/sam2_tiny.pth", o);
    FAIL() << "SAM 2 accepted bf16 on a CPU reported without bf16 units";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find("--precision bf16"), std::string::npos) << what;
  }
  SematPredictor::Options so;
  so.device = "cpu";
  so.precision = "bf16";
  EXPECT_THROW(SematPredictor(kData + "/semat_sam2_tiny/semat_sam2_tiny.pth", "", so), ConfigError);
  so.precision = "auto";
  EXPECT_EQ(SematPredictor(kData + "/semat_sam2_tiny/semat_sam2_tiny.pth", "", so).precision(), "fp32");
}

TEST(Precision, NamesAndAuto) {
  EXPECT_THROW(resolve_precision("fp16", "cpu"), ConfigError);
  EXPECT_STREQ(precision_name(Precision::kBFloat16), "bf16");
  EXPECT_STREQ(precision_name(Precision::kFloat32), "fp32");
  {
    ScopedEnv on("SEMAT_CPU_BF16", "1");
    EXPECT_EQ(resolve_precision("auto", "cpu"), Precision::kBFloat16);
    EXPECT_EQ(resolve_precision("bfloat16", "cpu"), Precision::kBFloat16);
    EXPECT_EQ(resolve_precision("float32", "cpu"), Precision::kFloat32);
  }
  const bool native = native_bf16();
  ScopedEnv real("SEMAT_CPU_BF16", nullptr);
  EXPECT_EQ(resolve_precision("auto", "cpu"), native ? Precision::kBFloat16 : Precision::kFloat32);
}

// The per-head global attention (more than 1024 tokens, inference) in bf16 against float32.
TEST(PrecisionBf16, GlobalAttentionByHead) {
  SKIP_WITHOUT_BF16();
  torch::manual_seed(3);
  torch::NoGradGuard g;
  sam::Attention attn(64, 4, 36);
  for (auto& p : attn->parameters()) p.normal_(0, 0.2);
  const auto x = torch::randn({1, 36, 36, 64});
  const auto ref = attn->forward(x);
  attn->to(torch::kBFloat16);
  const auto low = attn->forward(x.to(torch::kBFloat16)).to(torch::kFloat);
  const double err = (low - ref).abs().max().item<double>() / ref.abs().max().item<double>();
  // Measured 0.0123 with the row kernel (0.0165 with LibTorch's widen / add / softmax / narrow).
  if (std::getenv("SEMAT_TEST_VERBOSE")) std::cerr << "attention by head: relative error " << err << "\n";
  EXPECT_LT(err, 0.03) << "max abs error relative to the output's range";
}

TEST(PrecisionBf16, SamTinyMasksStayCloseToFloat32) {
  SKIP_WITHOUT_BF16();
  for (const std::string name : {"sam_tiny", "sam_hq_tiny"}) {
    const std::string dir = kData + "/" + name + "/";
    SamPredictor::Options o;
    o.device = "cpu";
    o.model_type = name == "sam_tiny" ? "tiny" : "hq_tiny";
    SamPredictor fp32(dir + name + ".pth", o);
    o.precision = "bf16";
    SamPredictor bf16(dir + name + ".pth", o);
    EXPECT_EQ(fp32.precision(), "fp32");
    EXPECT_EQ(bf16.precision(), "bf16");
    const cv::Mat image = io::read_color(dir + "image.png");
    fp32.set_image(image);
    bf16.set_image(image);
    // The embedding itself, relative to its range.
    const auto e32 = fp32.image_tensors().at(1), e16 = bf16.image_tensors().at(1);
    ASSERT_EQ(e32.name, "image_embeddings");
    const cv::Mat a(1, static_cast<int>(e32.bytes.size() / 4), CV_32F, const_cast<uint8_t*>(e32.bytes.data()));
    const cv::Mat b(1, static_cast<int>(e16.bytes.size() / 4), CV_32F, const_cast<uint8_t*>(e16.bytes.data()));
    double lo, hi;
    cv::minMaxLoc(cv::abs(a), &lo, &hi);
    const double emb_err = max_abs(a, b) / hi;
    // Measured 0.022 (SAM tiny) and 0.011 (HQ-SAM tiny).
    EXPECT_LT(emb_err, 0.06) << name << ": embedding max abs error relative to its range";
    const std::vector<Box> boxes{{60, 20, 230, 200}, {10, 10, 120, 150}};
    const auto m32 = fp32.predict_boxes(boxes, false), m16 = bf16.predict_boxes(boxes, false);
    for (size_t i = 0; i < boxes.size(); ++i) {
      const double j = iou(m32[i].mask(0), m16[i].mask(0));
      // Measured IoU 0.992-1.0 and predicted-IoU differences 0.001-0.021 over the four cases.
      EXPECT_GT(j, 0.95) << name << " box " << i << ": mask IoU bf16 vs fp32";
      EXPECT_LT(std::abs(m32[i].iou[0] - m16[i].iou[0]), 0.05) << name << " box " << i << ": predicted IoU";
      if (std::getenv("SEMAT_TEST_VERBOSE"))
        std::cerr << name << " box " << i << ": embedding err " << emb_err << ", mask IoU " << j
                  << ", iou pred diff " << std::abs(m32[i].iou[0] - m16[i].iou[0]) << "\n";
    }
  }
}

TEST(PrecisionBf16, SematTinyAlphaStaysCloseToFloat32) {
  SKIP_WITHOUT_BF16();
  const std::string dir = kData + "/semat_tiny/";
  SematPredictor::Options o;
  o.device = "cpu";
  SematPredictor fp32(dir + "semat_tiny.pth", "", o);
  o.precision = "bf16";
  o.merge_lora = false;  // bf16 merges LoRA whatever this says
  SematPredictor bf16(dir + "semat_tiny.pth", "", o);
  EXPECT_EQ(bf16.precision(), "bf16");
  const cv::Mat image = io::read_color(dir + "image.png");
  const std::vector<Box> boxes{{12, 5, 218, 209}, {100, 40, 290, 200}};
  const auto m32 = fp32.predict(image, boxes), m16 = bf16.predict(image, boxes);
  for (size_t i = 0; i < boxes.size(); ++i) {
    const double da = max_abs(m32[i].alpha, m16[i].alpha);
    const double mean = cv::norm(m32[i].alpha, m16[i].alpha, cv::NORM_L1) / m32[i].alpha.total();
    const double j = iou(m32[i].sam_mask, m16[i].sam_mask);
    const double tri = 1.0 - cv::countNonZero(m32[i].trimap != m16[i].trimap) / static_cast<double>(m32[i].trimap.total());
    // Measured: max abs alpha 0.096 / 0.090, mean 0.0073 / 0.0053, mask IoU 0.994 / 0.996,
    // trimap agreement 0.9975 / 0.9972 (boxes 0 / 1).
    EXPECT_LT(da, 0.25) << "box " << i << ": max abs alpha difference";
    EXPECT_LT(mean, 0.02) << "box " << i << ": mean abs alpha difference";
    EXPECT_GT(j, 0.98) << "box " << i << ": SAM-token mask IoU";
    EXPECT_GT(tri, 0.99) << "box " << i << ": share of trimap pixels agreeing";
    if (std::getenv("SEMAT_TEST_VERBOSE"))
      std::cerr << "semat box " << i << ": max abs alpha " << da << ", mean abs alpha " << mean
                << ", mask IoU " << j << ", trimap agreement " << tri << "\n";
  }
}

// SAM 2's Hiera trunk in bf16 (the FPN neck, prompt encoder and mask decoder float32) against
// float32 on the tiny random-weight fixture: the features, then masks, low-res logits and
// predicted IoU for the fixture's box, box + point and two more boxes.
TEST(PrecisionBf16, Sam2TinyMasksStayCloseToFloat32) {
  SKIP_WITHOUT_BF16();
  const std::string dir = kData + "/sam2_tiny/";
  Sam2Predictor::Options o;
  o.device = "cpu";
  Sam2Predictor fp32(dir + "sam2_tiny.pth", o);
  o.precision = "bf16";
  Sam2Predictor bf16(dir + "sam2_tiny.pth", o);
  EXPECT_EQ(fp32.precision(), "fp32");
  EXPECT_EQ(bf16.precision(), "bf16");
  const cv::Mat image = io::read_color(dir + "image.png");
  fp32.set_image(image);
  bf16.set_image(image);
  const auto t32 = fp32.image_tensors(), t16 = bf16.image_tensors();
  ASSERT_EQ(t32.size(), 4u);
  ASSERT_EQ(t16.size(), 4u);
  const bool verbose = std::getenv("SEMAT_TEST_VERBOSE") != nullptr;
  for (size_t i = 1; i < t32.size(); ++i) {  // image_embed, high_res_feat0, high_res_feat1
    const double err = relative_max_error(t32[i], t16[i]);
    // Measured 0.0120 (image_embed), 0.0057 / 0.0099 (high_res_feat0 / 1).
    EXPECT_LT(err, 0.03) << t32[i].name << ": max abs error relative to its range";
    // Zero would mean the trunk did not run in bf16 at all.
    EXPECT_GT(err, 0.0) << t32[i].name << ": bf16 features identical to float32";
    if (verbose) std::cerr << "sam2 " << t32[i].name << ": relative max error " << err << "\n";
  }
  std::vector<std::pair<std::string, SamPrompt>> prompts;
  {
    SamPrompt p;
    p.box = Box{21, 5, 160, 155};  // fixture.json prompts.box
    prompts.emplace_back("box", p);
    p.points = {{90.5f, 80.f}};  // prompts.box_point
    p.labels = {0};
    prompts.emplace_back("box_point", p);
    SamPrompt q;
    q.box = Box{100, 30, 230, 150};
    prompts.emplace_back("box2", q);
    q.box = Box{5, 60, 120, 158};
    prompts.emplace_back("box3", q);
  }
  // Random weights leave token 0's stability score near the 0.98 threshold of the single-mask
  // fallback (fixture.json facts: 0.961 for box, 0.982 for box_point), so in single-mask mode bf16
  // may pick the other output; that mask must then be one of the other precision's multimask ones.
  int flips = 0;
  for (const auto& [name, prompt] : prompts) {
    const auto s32 = fp32.predict(prompt, false), s16 = bf16.predict(prompt, false);
    const auto m32 = fp32.predict(prompt, true), m16 = bf16.predict(prompt, true);
    ASSERT_EQ(m32.logits.size(), 3u);
    ASSERT_EQ(m16.logits.size(), 3u);
    std::vector<std::tuple<std::string, const SamMasks*, const SamMasks*, size_t>> pairs;
    const double same = iou(s32.mask(0), s16.mask(0));
    if (same > 0.5) {
      pairs.emplace_back(name + " single", &s32, &s16, 0);
    } else {
      double best = 0;
      for (size_t k = 0; k < 3; ++k)
        best = std::max({best, iou(s16.mask(0), m32.mask(k)), iou(s32.mask(0), m16.mask(k))});
      ++flips;
      EXPECT_GT(best, 0.85) << name << ": bf16's single mask is neither fp32's nor one of its multimask masks";
      if (verbose) std::cerr << "sam2 " << name << " single: fallback choice flipped, best match IoU " << best << "\n";
    }
    for (size_t k = 0; k < 3; ++k) pairs.emplace_back(name + " multi " + std::to_string(k), &m32, &m16, k);
    for (const auto& [tag, a, b, k] : pairs) {
      const double j = iou(a->mask(k), b->mask(k));
      const double dmax = max_abs(a->low_res_logits[k], b->low_res_logits[k]);
      const double dmean = mean_abs(a->low_res_logits[k], b->low_res_logits[k]);
      double lo, hi;
      cv::minMaxLoc(cv::abs(a->low_res_logits[k]), &lo, &hi);
      const double diou = std::abs(a->iou[k] - b->iou[k]);
      // Measured over the 14 compared masks: IoU >= 0.918 (the flat, low-magnitude logits of
      // random weights: many pixels near 0), low-res logits max abs <= 0.24, mean abs <= 0.085
      // (logit ranges 1.5-12), predicted IoU differences <= 0.0025.
      EXPECT_GT(j, 0.85) << tag << ": mask IoU bf16 vs fp32";
      EXPECT_LT(dmax, 0.6) << tag << ": low-res logits max abs difference";
      EXPECT_LT(dmean, 0.2) << tag << ": low-res logits mean abs difference";
      EXPECT_LT(diou, 0.01) << tag << ": predicted IoU";
      if (verbose)
        std::cerr << "sam2 " << tag << ": mask IoU " << j << ", low-res logits max abs " << dmax << " mean abs "
                  << dmean << " (range " << hi << "), iou pred diff " << diou << "\n";
    }
  }
  EXPECT_LE(flips, 2) << "single-mask fallback choices that differ from float32 (of 4)";
}

// SEMat's SAM2 variant runs the same Hiera trunk (with its bbox_mask_patch_embed): the encoder's
// features in bf16 against float32, then the predictor end to end. The random-weight matting
// decoder amplifies feature differences a lot (float32 features times 1 + 0.004 N(0, 1) moved
// alpha by up to 0.27, mean 0.0035, in a trial), so the alpha bounds are loose and the feature
// bounds carry the precision check.
TEST(PrecisionBf16, SematSam2TinyStaysCloseToFloat32) {
  SKIP_WITHOUT_BF16();
  const std::string dir = kData + "/semat_sam2_tiny/";
  const bool verbose = std::getenv("SEMAT_TEST_VERBOSE") != nullptr;
  {
    torch::InferenceMode guard;
    const auto ck = io::load_checkpoint(dir + "semat_sam2_tiny.pth");
    auto a = semat_net::build_semat(ck, nullptr, "auto"), b = semat_net::build_semat(ck, nullptr, "auto");
    semat_net::merge_lora(*a);  // as the predictor in bf16
    semat_net::merge_lora(*b);
    b->sam2_model->encoder->trunk->set_compute_dtype(torch::kBFloat16);
    torch::manual_seed(0);
    const int64_t S = a->cfg.sam2_base.image_size;
    const auto images = torch::randn({2, 3, S, S});
    const auto boxes = torch::tensor({{10.f, 5.f, 100.f, 90.f}, {40.f, 30.f, 120.f, 125.f}});
    const auto fa = a->encode(images, boxes), fb = b->encode(images, boxes);
    auto rel = [](const torch::Tensor& x, const torch::Tensor& y) {
      return ((x - y).abs().max() / x.abs().max()).item<double>();
    };
    const std::vector<std::pair<std::string, double>> errs{{"embedding", rel(fa.embedding, fb.embedding)},
                                                           {"high_res0", rel(fa.high_res0, fb.high_res0)},
                                                           {"high_res1", rel(fa.high_res1, fb.high_res1)}};
    EXPECT_EQ(fb.embedding.scalar_type(), torch::kFloat) << "what leaves the trunk is float32";
    for (const auto& [name, err] : errs) {
      // Measured 0.0119 (embedding), 0.0055 / 0.0122 (high_res0 / 1).
      EXPECT_LT(err, 0.03) << name << ": max abs error relative to its range";
      EXPECT_GT(err, 0.0) << name << ": bf16 features identical to float32";
      if (verbose) std::cerr << "semat sam2 " << name << ": relative max error " << err << "\n";
    }
  }
  SematPredictor::Options o;
  o.device = "cpu";
  SematPredictor fp32(dir + "semat_sam2_tiny.pth", "", o);
  o.precision = "bf16";
  SematPredictor bf16(dir + "semat_sam2_tiny.pth", "", o);
  EXPECT_EQ(fp32.precision(), "fp32");
  EXPECT_EQ(bf16.precision(), "bf16");
  const cv::Mat image = io::read_color(dir + "image.png");
  const std::vector<Box> boxes{{40, 10, 300, 290}, {150, 30, 440, 280}};
  const auto m32 = fp32.predict(image, boxes), m16 = bf16.predict(image, boxes);
  ASSERT_EQ(m32.size(), boxes.size());
  ASSERT_EQ(m16.size(), boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    const double da = max_abs(m32[i].alpha, m16[i].alpha);
    const double mean = mean_abs(m32[i].alpha, m16[i].alpha);
    const double j = iou(m32[i].sam_mask, m16[i].sam_mask);
    // Measured: max abs alpha 0.26 / 0.60, mean 0.014 / 0.046, SAM-token mask IoU 0.995 / 0.994.
    EXPECT_LT(mean, 0.12) << "box " << i << ": mean abs alpha difference";
    EXPECT_GT(j, 0.98) << "box " << i << ": SAM-token mask IoU";
    if (verbose)
      std::cerr << "semat sam2 box " << i << ": max abs alpha " << da << ", mean abs alpha " << mean << ", mask IoU "
                << j << "\n";
  }
}

}  // namespace semat::models
