// RLE and polygon decoding against values worked out by hand from pycocotools' maskApi.c.
#include <gtest/gtest.h>

#include <cmath>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "semat/core/error.h"
#include "semat/data/rle.h"

namespace {

using semat::data::Rle;

cv::Mat mask_from_rows(const std::vector<std::vector<int>>& rows) {
  cv::Mat m(static_cast<int>(rows.size()), static_cast<int>(rows[0].size()), CV_8U);
  for (int y = 0; y < m.rows; ++y)
    for (int x = 0; x < m.cols; ++x) m.at<uchar>(y, x) = rows[y][x] ? 255 : 0;
  return m;
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && cv::countNonZero(a != b) == 0;
}

TEST(Rle, DecodesSmallStringColumnMajor) {
  // Column-major 0,1,1 | 1,1,0 | 0,0,0 -> counts [1, 4, 4] -> "144".
  const Rle r = semat::data::rle_from_string("144", 3, 3);
  EXPECT_EQ(r.counts, (std::vector<std::uint32_t>{1, 4, 4}));
  const cv::Mat expected = mask_from_rows({{0, 1, 0}, {1, 1, 0}, {1, 0, 0}});
  EXPECT_TRUE(same(semat::data::rle_to_mask(r), expected));
  EXPECT_EQ(semat::data::rle_to_string(semat::data::rle_from_mask(expected)), "144");
}

TEST(Rle, StringUsesContinuationSignAndDeltas) {
  // 30 needs a continuation group because bit 4 would read as a sign: 'n' '0'. Counts after the
  // third are deltas to the count two before: 3 - 5 = -2 -> 'N'; 2 - 30 = -28 -> 'T' 'O'.
  const Rle r{5, 8, {0, 5, 30, 3, 2}};
  EXPECT_EQ(semat::data::rle_to_string(r), "05n0NTO");
  const Rle back = semat::data::rle_from_string("05n0NTO", 5, 8);
  EXPECT_EQ(back.counts, r.counts);
  // A mask starting with 1 has a leading zero count; 5 ones fill column 0 of a 5-row mask.
  const cv::Mat m = semat::data::rle_to_mask(back);
  EXPECT_EQ(cv::countNonZero(m.col(0)), 5);
  EXPECT_EQ(cv::countNonZero(m), 5 + 3);
}

TEST(Rle, LargeCountsRoundTrip) {
  const Rle r{1000, 1000, {123456, 1, 876543}};
  const std::string s = semat::data::rle_to_string(r);
  EXPECT_EQ(semat::data::rle_from_string(s, 1000, 1000).counts, r.counts);
}

TEST(Rle, RandomMasksRoundTripThroughString) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 40), w = 1 + static_cast<int>(rng() % 40);
    cv::Mat m(h, w, CV_8U, cv::Scalar(0));
    for (int k = 0; k < 4; ++k)
      cv::circle(m, {static_cast<int>(rng() % w), static_cast<int>(rng() % h)},
                 static_cast<int>(rng() % 12), 255, cv::FILLED);
    const Rle r = semat::data::rle_from_mask(m);
    const std::string s = semat::data::rle_to_string(r);
    const Rle back = semat::data::rle_from_string(s, h, w);
    ASSERT_EQ(back.counts, r.counts) << s;
    ASSERT_TRUE(same(semat::data::rle_to_mask(back), m));
  }
}

TEST(Rle, BrokenDataThrowsDataError) {
  // Ends inside a value: 'n' has the continuation bit.
  EXPECT_THROW(semat::data::rle_from_string("05n", 5, 8), semat::DataError);
  // Character outside '0'..'o'.
  EXPECT_THROW(semat::data::rle_from_string("05~", 5, 8), semat::DataError);
  // A delta that makes a count negative: 'N' (-2) right after [0, 1, 1].
  EXPECT_THROW(semat::data::rle_from_string("011N", 5, 8), semat::DataError);
  // Counts that do not cover the mask.
  EXPECT_THROW(semat::data::rle_to_mask(Rle{3, 3, {1, 4}}), semat::DataError);
  EXPECT_THROW(semat::data::rle_to_mask(Rle{3, 3, {1, 4, 9}}), semat::DataError);
}

TEST(Polygon, SquareFollowsCocoHalfOpenConvention) {
  // Worked through rleFrPoly: corners (1,1)-(4,4) give boundary points at x = 1, 2, 3 with
  // y = 1 (top) and y = 4 (bottom): counts [7, 3, 3, 3, 3, 3, 14] in a 6x6 mask, i.e. the
  // pixels x, y in 1..3 (not 1..4 as fillPoly would draw).
  const Rle r = semat::data::rle_from_polygon({1, 1, 4, 1, 4, 4, 1, 4}, 6, 6);
  EXPECT_EQ(r.counts, (std::vector<std::uint32_t>{7, 3, 3, 3, 3, 3, 14}));
  cv::Mat expected(6, 6, CV_8U, cv::Scalar(0));
  expected(cv::Rect(1, 1, 3, 3)).setTo(255);
  EXPECT_TRUE(same(semat::data::rle_to_mask(r), expected));
}

TEST(Polygon, ClipsToImageAndMergesPolygons) {
  // A square running off the right edge is cut at the border; two squares are united.
  const cv::Mat m =
      semat::data::polygons_to_mask({{4, 0, 9, 0, 9, 2, 4, 2}, {0, 3, 2, 3, 2, 5, 0, 5}}, 6, 6);
  EXPECT_EQ(cv::countNonZero(m(cv::Rect(4, 0, 2, 2))), 4);
  EXPECT_EQ(cv::countNonZero(m(cv::Rect(0, 3, 2, 2))), 4);
  EXPECT_EQ(cv::countNonZero(m), 8);
}

// Issue #14: the boundary walk is bounded by the image, not by the coordinates.
TEST(Polygon, HugeAndNonFiniteCoordinates) {
  const cv::Mat near = semat::data::polygons_to_mask({{2, 2, 7, 2, 7, 4, 2, 4}}, 6, 6);  // inside the margin
  const cv::Mat far = semat::data::polygons_to_mask({{2, 2, 1e8, 2, 1e8, 4, 2, 4}}, 6, 6);
  EXPECT_TRUE(same(near, far));
  EXPECT_EQ(cv::countNonZero(far), 8);
  // Wholly outside: an empty mask.
  EXPECT_EQ(cv::countNonZero(semat::data::polygons_to_mask({{1e9, 1e9, 2e9, 1e9, 2e9, 2e9}}, 6, 6)), 0);
  for (double bad : {std::nan(""), double(INFINITY), -double(INFINITY)})
    EXPECT_THROW(semat::data::rle_from_polygon({1, 1, 4, 1, bad, 4}, 6, 6), semat::DataError);
  // A polygon whose clipped boundary is still absurdly long (a zigzag of many vertices).
  std::vector<double> zigzag;
  for (int i = 0; i < 200000; ++i) zigzag.insert(zigzag.end(), {i % 2 ? 5000.0 : 0.0, i * 0.02});
  EXPECT_THROW(semat::data::rle_from_polygon(zigzag, 4000, 5000), semat::DataError);
}

TEST(Polygon, RepeatedVertexAndTinyInputs) {
  // A repeated vertex divides 0 by 0 inside maskApi.c; the result must still be the square.
  const Rle r = semat::data::rle_from_polygon({1, 1, 4, 1, 4, 1, 4, 4, 1, 4}, 6, 6);
  EXPECT_EQ(cv::countNonZero(semat::data::rle_to_mask(r)), 9);
  EXPECT_THROW(semat::data::rle_from_polygon({1, 1, 4, 1}, 6, 6), semat::DataError);
  EXPECT_THROW(semat::data::rle_from_polygon({1, 1, 4, 1, 4}, 6, 6), semat::DataError);
}

}  // namespace
