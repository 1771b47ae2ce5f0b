// The training objectives against values worked out by hand on tiny tensors (and, for the
// Laplacian pyramid, against a plain-loop re-derivation of semat_arch.md §7.1).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "semat/core/error.h"
#include "semat/losses/criterion.h"
#include "semat/losses/ghm_loss.h"
#include "semat/losses/matting_loss.h"
#include "semat/losses/regularisation_loss.h"

namespace semat::losses {
namespace {

constexpr double kTol = 1e-5;

double value(const at::Tensor& t) { return t.to(torch::kDouble).item<double>(); }

torch::Tensor image(std::vector<float> v, int64_t h, int64_t w) {
  return torch::tensor(v).view({1, 1, h, w});
}

// (-1)^(i + j): the binomial blur maps it to exactly 0, also at reflected borders, so its
// Laplacian pyramid is itself at level 0 and 0 below.
torch::Tensor checkerboard(int64_t h, int64_t w) {
  auto i = torch::arange(h).view({h, 1}), j = torch::arange(w).view({1, w});
  return (1 - 2 * ((i + j) % 2)).to(torch::kFloat).view({1, 1, h, w});
}

TEST(LossTrimap, ClassesAndUnknownMask) {
  const auto trimap = image({0.f, 0.5f, 1.f, 128.f / 255.f, 0.1f, 0.9f}, 1, 6);
  const auto classes = trimap_classes(trimap);
  EXPECT_EQ(classes.scalar_type(), torch::kLong);
  EXPECT_TRUE(classes.equal(torch::tensor({0, 1, 2, 1, 0, 2}, torch::kLong).view({1, 1, 1, 6})));
  EXPECT_TRUE(unknown_mask(trimap).equal(image({0, 1, 0, 1, 0, 0}, 1, 6)));
}

TEST(LossL1, KnownAndUnknownEachNormalisedByOwnArea) {
  // Row 0 unknown (4 px, |diff| 0.4 + 0.2 + 0 + 0.2 = 0.8), the other 12 px known with a single
  // error of 0.6.
  auto trimap = torch::zeros({1, 1, 4, 4});
  trimap.select(2, 0).fill_(0.5);
  trimap.select(2, 3).fill_(1.0);
  auto gt = torch::zeros({1, 1, 4, 4});
  gt.select(2, 3).fill_(1.0);
  auto pred = gt.clone();
  pred[0][0][0][0] = 0.4;
  pred[0][0][0][1] = 0.2;
  pred[0][0][0][3] = 0.2;
  pred[0][0][2][2] = 0.6;
  MattingLossOptions options;
  options.laplacian_levels = 1;  // a 4x4 image has room for one level
  const auto losses = matting_losses(pred, gt, trimap, options);
  EXPECT_NEAR(value(losses.unknown_l1), 0.8 / 4, kTol);
  EXPECT_NEAR(value(losses.known_l1), 0.6 / 12, kTol);
}

TEST(LossL1, EmptyRegionGivesZeroNotNaN) {
  const auto pred = torch::full({1, 1, 4, 4}, 0.3);
  const auto gt = torch::zeros({1, 1, 4, 4});
  const auto no_unknown = torch::zeros({1, 1, 4, 4});
  EXPECT_EQ(value(masked_l1_loss(pred, gt, no_unknown)), 0.0);
  EXPECT_EQ(value(gradient_penalty_loss(pred, gt, no_unknown)), 0.0);
  EXPECT_NEAR(value(masked_l1_loss(pred, gt, 1 - no_unknown)), 0.3, kTol);
}

TEST(LossL1, BatchSharesOneNormaliser) {
  // Sample 0: one unknown pixel off by 1; sample 1: three exact unknown pixels -> 1 / 4.
  auto mask = torch::zeros({2, 1, 2, 2});
  mask[0][0][0][0] = 1;
  mask[1][0][0][0] = 1;
  mask[1][0][0][1] = 1;
  mask[1][0][1][1] = 1;
  auto pred = torch::zeros({2, 1, 2, 2});
  pred[0][0][0][0] = 1;
  pred[0][0][1][1] = 0.5;  // outside the mask: ignored
  EXPECT_NEAR(value(masked_l1_loss(pred, torch::zeros_like(pred), mask)), 0.25, kTol);
}

TEST(LossGradient, RampOnInteriorPixels) {
  // p(i, j) = 0.1 j: inside, Gx = (0.1 * 2) * (1 + 2 + 1) = 0.8 and Gy = 0.
  auto ramp = (torch::arange(4).to(torch::kFloat) * 0.1f)
                  .view({1, 1, 1, 4})
                  .expand({1, 1, 4, 4})
                  .contiguous();
  auto interior = torch::zeros({1, 1, 4, 4});
  interior.slice(2, 1, 3).slice(3, 1, 3).fill_(1);
  const auto zero = torch::zeros_like(ramp);
  // |Gx p - Gx g| = 0.8 on 4 px, plus the 0.01 penalty on |Gx p|: (3.2 + 0.032) / 4.
  EXPECT_NEAR(value(gradient_penalty_loss(ramp, zero, interior)), 0.808, kTol);
  // A perfect prediction still pays the penalty on its own gradient.
  EXPECT_NEAR(value(gradient_penalty_loss(ramp, ramp, interior)), 0.008, kTol);
  EXPECT_NEAR(value(gradient_penalty_loss(ramp, ramp, interior, 0.0)), 0.0, kTol);
}

TEST(LossGradient, RampOverWholeImageUsesZeroPadding) {
  // Zero padding: column differences are 0.1, 0.2, 0.2, -0.2 (j = 0..3), weighted 3 on the
  // border rows and 4 inside -> sum|Gx| = 2 (0.3 + 0.6 + 0.6 + 0.6) + 2 (0.4 + 0.8 + 0.8 + 0.8)
  // = 9.8. Gy is 0 inside and +-[0.1, 0.4, 0.8, 0.8] on rows 0 and 3 -> sum|Gy| = 4.2.
  auto ramp = (torch::arange(4).to(torch::kFloat) * 0.1f)
                  .view({1, 1, 1, 4})
                  .expand({1, 1, 4, 4})
                  .contiguous();
  const auto all = torch::ones({1, 1, 4, 4});
  EXPECT_NEAR(value(gradient_penalty_loss(ramp, torch::zeros_like(ramp), all)),
              (9.8 + 4.2) * 1.01 / 16, kTol);
}

TEST(LossLaplacian, ConstantOffsetIsZero) {
  const auto gt = torch::full({1, 1, 64, 64}, 0.2);
  EXPECT_NEAR(value(laplacian_loss(torch::zeros({1, 1, 64, 64}), torch::zeros({1, 1, 64, 64}))),
              0.0, kTol);
  EXPECT_NEAR(value(laplacian_loss(torch::full({1, 1, 64, 64}, 0.7), gt)), 0.0, kTol);
  EXPECT_NEAR(value(laplacian_loss(torch::full({1, 1, 4, 4}, 0.7), torch::zeros({1, 1, 4, 4}), 1)),
              0.0, kTol);
}

TEST(LossLaplacian, CheckerboardDifferenceLivesOnLevelZero) {
  const auto gt4 = torch::full({1, 1, 4, 4}, 0.5);
  EXPECT_NEAR(value(laplacian_loss(gt4 + 0.25 * checkerboard(4, 4), gt4, 1)), 0.25, kTol);
  // Five levels: only level 0 (weight 2^0) is non-zero, and the sum is divided by 5.
  const auto gt64 = torch::full({1, 1, 64, 64}, 0.5);
  EXPECT_NEAR(value(laplacian_loss(gt64 + 0.25 * checkerboard(64, 64), gt64)), 0.25 / 5, kTol);
}

// Plain loops over one [h, w] plane, following §7.1 literally, in double.
using Plane = std::vector<std::vector<double>>;

Plane blur_ref(const Plane& x) {
  const double k[5] = {1, 4, 6, 4, 1};
  const int h = static_cast<int>(x.size()), w = static_cast<int>(x[0].size());
  auto refl = [](int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); };
  Plane out(h, std::vector<double>(w, 0.0));
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j)
      for (int di = -2; di <= 2; ++di)
        for (int dj = -2; dj <= 2; ++dj)
          out[i][j] += k[di + 2] * k[dj + 2] / 256.0 * x[refl(i + di, h)][refl(j + dj, w)];
  return out;
}

double laplacian_ref(Plane x, int levels) {
  double loss = 0;
  for (int l = 0; l < levels; ++l) {
    const size_t h = x.size() - x.size() % 2, w = x[0].size() - x[0].size() % 2;
    x.resize(h);
    for (auto& row : x) row.resize(w);
    const Plane blurred = blur_ref(x);
    Plane down(h / 2, std::vector<double>(w / 2));
    Plane up_in(h, std::vector<double>(w, 0.0));
    for (size_t i = 0; i < h / 2; ++i)
      for (size_t j = 0; j < w / 2; ++j) {
        down[i][j] = blurred[2 * i][2 * j];
        up_in[2 * i][2 * j] = 4 * down[i][j];
      }
    const Plane up = blur_ref(up_in);
    double sum = 0;
    for (size_t i = 0; i < h; ++i)
      for (size_t j = 0; j < w; ++j) sum += std::abs(x[i][j] - up[i][j]);
    loss += std::pow(2.0, l) * sum / static_cast<double>(h * w);
    x = down;
  }
  return loss / levels;
}

TEST(LossLaplacian, MatchesPlainLoopPyramidWithLevelWeights) {
  torch::manual_seed(7);
  // Odd sizes exercise the crop to even size at every level: 19x22 -> 18x22, 9x11 -> 8x10, 4x5.
  const auto pred = torch::rand({1, 1, 19, 22}, torch::kDouble);
  const auto gt = torch::rand({1, 1, 19, 22}, torch::kDouble);
  const auto diff = (pred - gt)[0][0];
  Plane plane(19, std::vector<double>(22));
  for (int i = 0; i < 19; ++i)
    for (int j = 0; j < 22; ++j) plane[i][j] = diff[i][j].item<double>();
  EXPECT_NEAR(value(laplacian_loss(pred, gt, 3)), laplacian_ref(plane, 3), 1e-10);
}

TEST(LossLaplacian, TooSmallForLevelsThrowsWithShape) {
  const auto x = torch::zeros({1, 1, 8, 8});
  try {
    laplacian_loss(x, x, 5);
    FAIL() << "expected c10::Error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 1, 8, 8]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(laplacian_loss(x, torch::zeros({1, 1, 8, 4}), 1), c10::Error);
}

TEST(LossReg, BceAgainstFrozenSamBinarisedAtHalf) {
  const auto sam = image({0.f, 2.f, -1.f, 0.5f}, 2, 2);
  // Frozen probabilities > 0.5 -> 1; a logit of exactly 0 (p = 0.5) is background.
  auto frozen = image({1.f, -3.f, 0.f, 2.f}, 2, 2).requires_grad_(true);
  const double expected = (std::log(2.0) + std::log1p(std::exp(2.0)) + std::log1p(std::exp(-1.0)) +
                           std::log1p(std::exp(-0.5))) /
                          4;
  auto sam_param = sam.clone().requires_grad_(true);
  const auto loss = sam_regularisation_loss(sam_param, frozen);
  EXPECT_NEAR(value(loss), expected, kTol);
  loss.backward();
  EXPECT_TRUE(sam_param.grad().defined());
  EXPECT_FALSE(frozen.grad().defined());
  EXPECT_THROW(sam_regularisation_loss(sam, torch::zeros({1, 1, 4, 4})), c10::Error);
}

// Rows of 3 logits for 4 pixels as [1, 3, 1, 4] and their classes as [1, 1, 1, 4]. softmax of
// (0, 0, 0) is 1/3 each; of (ln 6, 0, 0) it is (6/8, 1/8, 1/8).
struct GhmBatch {
  torch::Tensor logits, classes;
};
GhmBatch ghm_batch(const std::vector<bool>& sharp, const std::vector<int64_t>& classes) {
  std::vector<float> rows;
  for (bool s : sharp) {
    rows.insert(rows.end(), {s ? static_cast<float>(std::log(6.0)) : 0.f, 0.f, 0.f});
  }
  const auto n = static_cast<int64_t>(sharp.size());
  return {torch::tensor(rows).view({1, 1, n, 3}).permute({0, 3, 1, 2}).contiguous(),
          torch::tensor(classes, torch::kLong).view({1, 1, 1, n})};
}

// Step 1: g = 2/3, 2/3 (bin 6), 0.25 (bin 2), 0.875 (bin 8); CE = ln 3, ln 3, ln(4/3), ln 8.
GhmBatch ghm_step1() { return ghm_batch({false, false, true, true}, {0, 2, 0, 1}); }
// Step 2: g = 2/3 (bin 6) once, 0.25 (bin 2) three times; bin 8 is empty.
GhmBatch ghm_step2() { return ghm_batch({false, true, true, true}, {1, 0, 0, 0}); }

TEST(LossGhm, BinsAndMomentumOverTwoSteps) {
  GhmClassificationLoss ghm;  // 10 bins, momentum 0.75, normalised
  auto b1 = ghm_step1();
  // acc = 0.25 * count: bin 6 0.5, bins 2 and 8 0.25 -> weights 2, 2, 4, 4 -> /12.
  const double expected1 = (2 * std::log(3.0) * 2 + 4 * std::log(4.0 / 3) + 4 * std::log(8.0)) / 12;
  EXPECT_NEAR(expected1, 5 * std::log(2.0) / 3, 1e-12);
  EXPECT_NEAR(value(ghm(b1.logits, b1.classes)), expected1, kTol);
  const auto acc1 = ghm.accumulators();
  EXPECT_TRUE(acc1.allclose(
      torch::tensor({0.0, 0.0, .25, 0.0, 0.0, 0.0, .5, 0.0, .25, 0.0}, torch::kDouble)));

  // acc: bin 6 0.75 * 0.5 + 0.25 = 0.625, bin 2 0.75 * 0.25 + 0.75 = 0.9375, bin 8 kept at 0.25.
  auto b2 = ghm_step2();
  const double w6 = 1 / 0.625, w2 = 1 / 0.9375;
  const double expected2 = (w6 * std::log(3.0) + 3 * w2 * std::log(4.0 / 3)) / (w6 + 3 * w2);
  EXPECT_NEAR(value(ghm(b2.logits, b2.classes)), expected2, kTol);
  EXPECT_NEAR(expected2, std::log(3.0) / 3 + 2 * std::log(4.0 / 3) / 3, 1e-12);
  EXPECT_TRUE(ghm.accumulators().allclose(
      torch::tensor({0.0, 0.0, .9375, 0.0, 0.0, 0.0, .625, 0.0, .25, 0.0}, torch::kDouble)));
}

TEST(LossGhm, UnnormalisedIsWeightedSumOverNonEmptyBins) {
  GhmClassificationLoss ghm({10, 0.75, false});
  auto b1 = ghm_step1();
  // Weights 2, 2, 4, 4 divided by 3 non-empty bins; the reduction is a sum.
  EXPECT_NEAR(value(ghm(b1.logits, b1.classes)), 20 * std::log(2.0) / 3, kTol);
  GhmClassificationLoss no_momentum({10, 0.0, false});
  // Without momentum the weights are 1 / count: 1/2, 1/2, 1, 1 over 3 bins.
  EXPECT_NEAR(value(no_momentum(b1.logits, b1.classes)),
              (std::log(3.0) + std::log(4.0 / 3) + std::log(8.0)) / 3, kTol);
}

TEST(LossGhm, RestoredAccumulatorsContinueTheSameRun) {
  GhmClassificationLoss first;
  auto b1 = ghm_step1(), b2 = ghm_step2();
  first(b1.logits, b1.classes);
  const auto saved = first.accumulators();
  const double next = value(first(b2.logits, b2.classes));
  GhmClassificationLoss resumed;
  resumed.set_accumulators(saved);
  EXPECT_DOUBLE_EQ(value(resumed(b2.logits, b2.classes)), next);
  EXPECT_TRUE(resumed.accumulators().equal(first.accumulators()));
  EXPECT_THROW(resumed.set_accumulators(torch::zeros({3}, torch::kDouble)), InvalidArgument);
  EXPECT_THROW(resumed.set_accumulators(-torch::ones({10}, torch::kDouble)), InvalidArgument);
}

TEST(LossGhm, RejectsBadOptionsAndInputs) {
  EXPECT_THROW(GhmClassificationLoss({0, 0.75, true}), ConfigError);
  EXPECT_THROW(GhmClassificationLoss({10, 1.0, true}), ConfigError);
  GhmClassificationLoss ghm;
  auto b = ghm_step1();
  EXPECT_THROW(ghm(b.logits, b.classes.to(torch::kFloat)), c10::Error);
  EXPECT_THROW(ghm(b.logits, b.classes + 3), c10::Error);
  EXPECT_THROW(ghm(b.logits, torch::zeros({1, 1, 1, 5}, torch::kLong)), c10::Error);
}

LossInputs random_inputs(int64_t b, int64_t s) {
  LossInputs in;
  in.alpha_gt = torch::rand({b, 1, s, s});
  in.trimap = torch::randint(0, 3, {b, 1, s, s}).to(torch::kFloat) / 2;
  in.alpha = torch::rand({b, 1, s, s});
  in.sam_logits = torch::randn({b, 1, s, s});
  in.frozen_sam_logits = torch::randn({b, 1, s, s});
  in.trimap_logits = torch::randn({b, 3, s, s});
  return in;
}

TEST(LossCriterion, TotalIsWeightedSumOfComponents) {
  torch::manual_seed(3);
  const auto in = random_inputs(2, 64);
  Criterion criterion;
  EXPECT_EQ(criterion.config().reg_weight, 0.2);
  EXPECT_EQ(criterion.config().trimap_weight, 0.05);
  const auto terms = criterion(in);
  const auto s = terms.scalars();
  ASSERT_EQ(s.size(), 8u);
  const char* names[] = {"loss",     "matting",   "unknown_l1", "known_l1",
                         "gradient", "laplacian", "reg",        "trimap"};
  for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s[i].first, names[i]);
  EXPECT_NEAR(s[1].second, s[2].second + s[3].second + s[4].second + s[5].second, kTol);
  EXPECT_NEAR(s[0].second, s[1].second + 0.2 * s[6].second + 0.05 * s[7].second, kTol);
  EXPECT_NEAR(s[6].second, value(sam_regularisation_loss(in.sam_logits, in.frozen_sam_logits)),
              kTol);

  LossConfig custom;
  custom.matting.known_l1_weight = 0;
  custom.reg_weight = 1.5;
  custom.trimap_weight = 0;
  const auto t2 = Criterion(custom)(in).scalars();
  EXPECT_NEAR(t2[0].second, s[2].second + s[4].second + s[5].second + 1.5 * s[6].second, kTol);
}

TEST(LossCriterion, OptionalTermsAreZeroWhenNotGiven) {
  auto in = random_inputs(1, 64);
  in.sam_logits = at::Tensor();
  in.trimap_logits = at::Tensor();
  Criterion criterion;
  const auto terms = criterion(in);
  EXPECT_EQ(value(terms.reg), 0.0);
  EXPECT_EQ(value(terms.trimap), 0.0);
  EXPECT_NEAR(value(terms.total), value(terms.matting.total), kTol);
  EXPECT_TRUE(criterion.ghm().accumulators().eq(0).all().item<bool>());
}

TEST(LossCriterion, GradientsFlowAndAreFinite) {
  torch::manual_seed(5);
  auto in = random_inputs(2, 64);
  auto alpha_logits = torch::randn({2, 1, 64, 64}).requires_grad_(true);
  auto sam_logits = in.sam_logits.clone().requires_grad_(true);
  auto trimap_logits = in.trimap_logits.clone().requires_grad_(true);
  in.alpha = torch::sigmoid(alpha_logits);
  in.sam_logits = sam_logits;
  in.trimap_logits = trimap_logits;
  Criterion criterion;
  const auto terms = criterion(in);
  terms.total.backward();
  for (const auto& g : {alpha_logits.grad(), sam_logits.grad(), trimap_logits.grad()}) {
    ASSERT_TRUE(g.defined());
    EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
    EXPECT_GT(g.abs().sum().item<double>(), 0.0);
  }
  EXPECT_TRUE(std::isfinite(value(terms.total)));
}

TEST(LossCriterion, RejectsBadConfigAndMismatchedShapes) {
  LossConfig bad;
  bad.reg_weight = -1;
  EXPECT_THROW(Criterion{bad}, ConfigError);
  LossConfig bad_levels;
  bad_levels.matting.laplacian_levels = 0;
  EXPECT_THROW(Criterion{bad_levels}, ConfigError);

  auto in = random_inputs(1, 64);
  in.trimap_logits = torch::randn({1, 2, 64, 64});
  Criterion criterion;
  try {
    criterion(in);
    FAIL() << "expected c10::Error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 2, 64, 64]"), std::string::npos) << e.what();
  }
  in = random_inputs(1, 64);
  in.alpha_gt = torch::rand({1, 1, 32, 32});
  EXPECT_THROW(criterion(in), c10::Error);
}

}  // namespace
}  // namespace semat::losses
