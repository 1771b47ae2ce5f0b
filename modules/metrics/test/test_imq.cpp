#include <gtest/gtest.h>

#include <filesystem>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "semat/core/error.h"
#include "semat/metrics/imq.h"

namespace fs = std::filesystem;

namespace semat::metrics {
namespace {

cv::Mat box(int x, int y, int w, int h, double v = 1.0) {
  cv::Mat m(32, 32, CV_64FC1, cv::Scalar(0));
  m(cv::Rect(x, y, w, h)) = v;
  return m;
}

TEST(Imq, HungarianSquareAndRectangular) {
  // Optimal: row0->col1 (1), row1->col0 (2), row2->col2 (2) = 5; greedy would take row0->col0.
  EXPECT_EQ(hungarian({{0.5, 1, 3}, {2, 4, 6}, {3, 6, 2}}), (std::vector<int>{1, 0, 2}));
  EXPECT_EQ(hungarian({{4, 1, 3}, {2, 0, 5}, {3, 2, 2}}), (std::vector<int>{1, 0, 2}));
  EXPECT_EQ(hungarian({{0.9, 0.1, 0.5}, {0.2, 0.3, 0.9}}), (std::vector<int>{1, 0}));
  // Three rows, two columns: the cheapest two pairs (0.2 + 0.1) leave row 2 out.
  EXPECT_EQ(hungarian({{0.9, 0.2}, {0.1, 0.3}, {0.5, 0.9}}), (std::vector<int>{1, 0, -1}));
  EXPECT_TRUE(hungarian({}).empty());
  EXPECT_EQ(hungarian({{}, {}}), (std::vector<int>{-1, -1}));
}

TEST(Imq, SupportIouAndSimilarity) {
  EXPECT_NEAR(support_iou(box(0, 0, 4, 4), box(2, 0, 4, 4, 0.1)), 8.0 / 24.0, 1e-9);
  EXPECT_EQ(support_iou(box(0, 0, 4, 4), box(8, 8, 4, 4)), 0.0);
  EXPECT_DOUBLE_EQ(imq_similarity(0.0), 1.0);
  EXPECT_DOUBLE_EQ(imq_similarity(0.05), 0.5);
  EXPECT_DOUBLE_EQ(imq_similarity(0.3), 0.0);
}

TEST(Imq, InstanceErrorsOverTheUnionSupport) {
  // Union support 16 px, |diff| = 0.5 on all of them: MAD = 8 / 17, MSE = 4 / 17.
  const InstanceErrors e = instance_errors(box(0, 0, 4, 4, 0.5), box(0, 0, 4, 4, 1.0));
  EXPECT_NEAR(e.mad, 8.0 / 17.0, 1e-12);
  EXPECT_NEAR(e.mse, 4.0 / 17.0, 1e-12);
  EXPECT_GE(e.grad, 0.0);
  const InstanceErrors z = instance_errors(box(3, 3, 5, 5), box(3, 3, 5, 5));
  EXPECT_EQ(z.mad, 0.0);
  EXPECT_EQ(z.grad, 0.0);
  EXPECT_EQ(z.conn, 0.0);
}

TEST(Imq, KnownTruePositivesFalsePositivesAndMisses) {
  // Image 1: GT {A, B, C}; predictions A (exact), B (exact), D (nowhere): TP 2, FP 1, FN 1.
  // Image 2: GT {E}, no prediction: FN 1. Image 3: no GT, one prediction: FP 1.
  const cv::Mat a = box(0, 0, 8, 8), b = box(16, 0, 8, 8), c = box(0, 16, 8, 8), d = box(24, 24, 6, 6);
  std::vector<InstanceMatch> m;
  m.push_back(match_instances({d, b, a}, {a, b, c}, 0.5));
  m.push_back(match_instances({}, {box(4, 4, 8, 8)}, 0.5));
  m.push_back(match_instances({box(4, 4, 8, 8)}, {}, 0.5));
  const ImqScores s = aggregate_imq(m, 0.5);
  EXPECT_EQ(s.tp, 2);
  EXPECT_EQ(s.fp, 2);
  EXPECT_EQ(s.fn, 2);
  // Perfect mattes on the TPs: IMQ = RQ = 2 / (2 + 1 + 1).
  EXPECT_NEAR(s.imq_mad, 0.5, 1e-12);
  EXPECT_NEAR(s.imq_mse, 0.5, 1e-12);
  EXPECT_NEAR(s.imq_grad, 0.5, 1e-12);
  EXPECT_NEAR(s.imq_conn, 0.5, 1e-12);
  EXPECT_NEAR(s.iou, 0.5, 1e-9);
}

TEST(Imq, ThresholdDecidesTruePositives) {
  // IoU 0.6: a TP at 0.5, a FP + FN at 0.75. The matte is off by 0.02 (MAD ~0.02, s ~0.8).
  const cv::Mat g = box(0, 0, 10, 10, 1.0);
  cv::Mat p = box(0, 0, 10, 6, 0.98);
  const std::vector<InstanceMatch> m{match_instances({p}, {g}, 0.5)};
  ASSERT_EQ(m[0].pairs.size(), 1u);
  EXPECT_NEAR(m[0].pairs[0].iou, 0.6, 1e-9);
  const ImqScores lo = aggregate_imq(m, 0.5), hi = aggregate_imq(m, 0.75);
  EXPECT_EQ(lo.tp, 1);
  EXPECT_EQ(lo.fp + lo.fn, 0);
  const double mad = (60 * 0.02 + 40 * 1.0) / 101.0;  // union support is the GT's 100 px
  EXPECT_NEAR(lo.imq_mad, imq_similarity(mad), 1e-12);
  EXPECT_EQ(hi.tp, 0);
  EXPECT_EQ(hi.fp, 1);
  EXPECT_EQ(hi.fn, 1);
  EXPECT_EQ(hi.imq_mad, 0.0);
}

TEST(Imq, HungarianBeatsGreedyPairing) {
  // P0's best match is G0 (IoU 0.43), but P1 needs G0 more (0.8) and P0 still gets G1 (0.25):
  // the assignment maximises the total IoU instead of pairing greedily.
  const cv::Mat g0 = box(0, 0, 10, 10), g1 = box(10, 0, 10, 10);
  const cv::Mat p0 = box(4, 0, 10, 10), p1 = box(0, 0, 8, 10);
  const InstanceMatch m = match_instances({p0, p1}, {g0, g1}, 0.1);
  ASSERT_EQ(m.pairs.size(), 2u);
  for (const auto& pr : m.pairs) EXPECT_EQ(pr.pred == 0 ? 1 : 0, pr.gt);
}

TEST(Imq, EvaluatesTheHim2kLayout) {
  const fs::path dir = fs::temp_directory_path() / "semat_imq_layout";
  fs::remove_all(dir);
  auto put = [&](const std::string& rel, const cv::Mat& unit) {
    fs::create_directories((dir / rel).parent_path());
    cv::Mat u8;
    unit.convertTo(u8, CV_8U, 255.0);
    ASSERT_TRUE(cv::imwrite((dir / rel).string(), u8));
  };
  put("gt/img1/0.png", box(0, 0, 8, 8));
  put("gt/img1/1.png", box(16, 16, 8, 8));
  put("pred/img1/a.png", box(16, 16, 8, 8));
  put("pred/img1/b.png", box(0, 0, 8, 8));
  put("gt/img2/0.png", box(0, 0, 8, 8));
  InstanceEvalOptions opt;
  opt.gt_dir = (dir / "gt").string();
  opt.pred_dir = (dir / "pred").string();
  EXPECT_THROW(evaluate_instances(opt), DataError);  // img2 has no prediction folder
  opt.allow_missing = true;
  InstanceEvalReport r = evaluate_instances(opt);
  ASSERT_EQ(r.scores.size(), 2u);
  EXPECT_EQ(r.scores[0].tp, 2);
  EXPECT_EQ(r.scores[0].fn, 1);
  EXPECT_NEAR(r.scores[0].imq_mad, 2.0 / 2.5, 1e-12);
  EXPECT_EQ(r.missing_predictions, (std::vector<std::string>{"img2"}));
  // A prediction of another size is named.
  put("pred/img2/x.png", cv::Mat(cv::Mat::zeros(10, 10, CV_64FC1)));
  try {
    evaluate_instances(opt);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("x.png"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace semat::metrics
