#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "coco_fixture.h"
#include "semat/core/error.h"
#include "semat/data/fusion.h"

namespace {

using semat::Box;
using semat::data::FusionInstance;
using semat::data::OverlapMode;

Box box_of(const cv::Mat& m) {
  const cv::Rect r = cv::boundingRect(m);
  return Box{double(r.x), double(r.y), double(r.x + r.width), double(r.y + r.height)};
}

FusionInstance inst(std::int64_t id, const cv::Mat& mask) { return {id, box_of(mask), mask}; }

TEST(Fusion, BoxOverlapModes) {
  const Box person{0, 0, 100, 100}, tie{10, 10, 20, 30};
  EXPECT_DOUBLE_EQ(semat::data::box_overlap(tie, person, OverlapMode::kIoa), 1.0);
  EXPECT_DOUBLE_EQ(semat::data::box_overlap(tie, person, OverlapMode::kIou), 200.0 / 10000);
  const Box half{90, 0, 110, 10};  // half inside
  EXPECT_DOUBLE_EQ(semat::data::box_overlap(half, person, OverlapMode::kIoa), 0.5);
  EXPECT_DOUBLE_EQ(semat::data::box_overlap(Box{200, 200, 210, 210}, person, OverlapMode::kIoa), 0);
  EXPECT_EQ(semat::data::parse_overlap_mode("iou"), OverlapMode::kIou);
  EXPECT_THROW(semat::data::parse_overlap_mode("dice"), semat::ConfigError);
}

TEST(Fusion, TieAndBottleFusedBallFarAwayRejected) {
  const semat::test::FixtureImage s = semat::test::person_scene(1, 100, 1);
  const std::vector<FusionInstance> persons = {inst(100, s.instances[0].mask)};
  const std::vector<FusionInstance> acc = {inst(101, s.instances[1].mask),   // tie
                                           inst(102, s.instances[2].mask),   // bottle
                                           inst(103, s.instances[3].mask)};  // ball
  const auto d = semat::data::assign_accessories(persons, acc);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].person, 0);
  EXPECT_EQ(d[0].reason, "fused");
  EXPECT_EQ(d[1].person, 0);
  EXPECT_EQ(d[1].reason, "fused");
  // The ball's box lies inside the person's box (ioa = 1), but its dilated mask does not touch.
  EXPECT_DOUBLE_EQ(d[2].overlap, 1.0);
  EXPECT_EQ(d[2].person, -1);
  EXPECT_EQ(d[2].reason, "not_touching");
}

TEST(Fusion, LiteralIouRejectsTheTie) {
  // The paper's literal reading: a tie's box is far smaller than a person's, so IoU < 0.8.
  const semat::test::FixtureImage s = semat::test::person_scene(1, 100, 1);
  semat::data::FusionParams p;
  p.overlap = OverlapMode::kIou;
  const auto d = semat::data::assign_accessories({inst(100, s.instances[0].mask)},
                                                 {inst(101, s.instances[1].mask)}, p);
  EXPECT_EQ(d[0].person, -1);
  EXPECT_EQ(d[0].reason, "below_tau");
}

TEST(Fusion, TouchUsesDilationOfFour) {
  // A disc of size 4 has radius 2: one empty pixel between accessory and person is bridged,
  // two are not.
  cv::Mat person(40, 40, CV_8U, cv::Scalar(0));
  person(cv::Rect(5, 5, 10, 30)).setTo(255);  // x 5..14
  for (int gap : {1, 2}) {
    cv::Mat acc(40, 40, CV_8U, cv::Scalar(0));
    acc(cv::Rect(15 + gap, 10, 4, 4)).setTo(255);
    FusionInstance p = inst(1, person);
    p.box = Box{0, 0, 40, 40};  // the accessory's box is inside
    const auto d = semat::data::assign_accessories({p}, {inst(2, acc)});
    EXPECT_EQ(d[0].person, gap == 1 ? 0 : -1) << "gap " << gap;
  }
}

TEST(Fusion, AccessoryBetweenTwoPeopleGoesToTheLargerOverlap) {
  cv::Mat left(60, 100, CV_8U, cv::Scalar(0)), right(60, 100, CV_8U, cv::Scalar(0)),
      bag(60, 100, CV_8U, cv::Scalar(0));
  left(cv::Rect(10, 5, 40, 50)).setTo(255);   // box x 10..50
  right(cv::Rect(52, 5, 40, 50)).setTo(255);  // box x 52..92
  bag(cv::Rect(32, 20, 20, 10)).setTo(255);   // x 32..52 touches both
  // Boxes as loose as annotators draw them, so that the bag qualifies for both people: ioa 1.0
  // with the left box (x 10..55) and 0.9 with the right one (x 34..92).
  FusionInstance l = inst(1, left), r = inst(2, right);
  l.box.x1 = 55;
  r.box.x0 = 34;
  for (bool swap : {false, true}) {  // the order of the people must not matter
    std::vector<FusionInstance> persons =
        swap ? std::vector<FusionInstance>{r, l} : std::vector<FusionInstance>{l, r};
    const auto d = semat::data::assign_accessories(persons, {inst(9, bag)});
    ASSERT_GE(d[0].person, 0);
    EXPECT_EQ(persons[d[0].person].id, 1) << "swap " << swap;
    EXPECT_DOUBLE_EQ(d[0].overlap, 1.0);
  }
  // Shrink the left box so that the right person has the larger overlap.
  l.box.x1 = 44;  // ioa 12/20 = 0.6 < tau
  const auto d = semat::data::assign_accessories({l, r}, {inst(9, bag)});
  EXPECT_EQ(d[0].person, 1);
  EXPECT_NEAR(d[0].overlap, 0.9, 1e-12);
}

TEST(Fusion, DefaultListHasAccessorySupercategoryAndCarriedThings) {
  const auto names = semat::data::default_accessory_names();
  for (const char* n : {"backpack", "umbrella", "handbag", "tie", "suitcase", "bottle", "cup",
                        "cell phone", "sports ball", "kite", "skis"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_EQ(names.size(), 18u);
}

}  // namespace
