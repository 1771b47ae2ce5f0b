#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "coco_fixture.h"
#include "semat/core/error.h"
#include "semat/data/coco.h"

namespace {

using nlohmann::json;
using semat::data::CocoDataset;
using semat::data::Segmentation;

const char* kSmall = R"({
  "images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 5},
             {"id": 2, "file_name": "b.jpg", "height": 5}],
  "annotations": [
    {"id": 10, "image_id": 1, "category_id": 3, "iscrowd": 0, "bbox": [1, 1, 3, 3],
     "segmentation": [[1, 1, 4, 1, 4, 4, 1, 4]]},
    {"id": 11, "image_id": 1, "category_id": 3, "iscrowd": 1,
     "segmentation": {"size": [5, 8], "counts": [0, 5, 35]}},
    {"id": 12, "image_id": 1, "category_id": 4, "segmentation": {"size": [5, 8], "counts": "05n0NTO"}},
    {"id": 13, "image_id": 1, "category_id": 4},
    {"id": 14, "image_id": 99, "category_id": 3, "segmentation": [[0, 0, 2, 0, 2, 2]]}
  ],
  "licenses": [{"id": 1, "name": "x"}],
  "categories": [{"id": 3, "name": "person", "supercategory": "person"},
                 {"id": 4, "name": "tie", "supercategory": "accessory"}]
})";

TEST(Coco, ReadsEveryEncodingAndKeepsBrokenEntries) {
  const CocoDataset ds = semat::data::parse_coco(kSmall, "small.json");
  EXPECT_FALSE(ds.panoptic);
  ASSERT_EQ(ds.images.size(), 1u);
  ASSERT_EQ(ds.image_errors.size(), 1u);  // image 2 has no width
  EXPECT_NE(ds.image_errors[0].find("width"), std::string::npos);
  EXPECT_EQ(ds.category_id("person"), 3);
  EXPECT_EQ(ds.category_id("tie"), 4);
  EXPECT_EQ(ds.category_id("dog"), -1);
  ASSERT_EQ(ds.annotations.size(), 5u);
  const auto& a = ds.annotations;
  EXPECT_EQ(a[0].segmentation.kind, Segmentation::Kind::kPolygons);
  EXPECT_TRUE(a[0].has_bbox);
  EXPECT_DOUBLE_EQ(a[0].box.x1, 4);
  EXPECT_TRUE(a[1].iscrowd);
  EXPECT_EQ(a[1].segmentation.kind, Segmentation::Kind::kRleCounts);
  EXPECT_EQ(a[2].segmentation.kind, Segmentation::Kind::kRleString);
  EXPECT_NE(a[3].error.find("segmentation"), std::string::npos);
  EXPECT_EQ(a[4].image_id, 99);

  const semat::data::CocoImage& im = ds.images.at(1);
  EXPECT_EQ(cv::countNonZero(semat::data::decode_mask(a[0], im)), 9);
  EXPECT_EQ(cv::countNonZero(semat::data::decode_mask(a[1], im)), 5);
  EXPECT_EQ(cv::countNonZero(semat::data::decode_mask(a[2], im)), 8);
}

TEST(Coco, RleOfAnotherSizeIsABrokenSegmentation) {
  std::string text = kSmall;
  text.replace(text.find("\"size\": [5, 8], \"counts\": \"05n0NTO\""), 35,
               "\"size\": [8, 5], \"counts\": \"05n0NTO\"");
  const CocoDataset ds = semat::data::parse_coco(text, "t.json");
  EXPECT_THROW(semat::data::decode_mask(ds.annotations[2], ds.images.at(1)), semat::DataError);
}

TEST(Coco, KeepImageFiltersWhileParsing) {
  semat::data::LoadOptions o;
  o.keep_image = [](std::int64_t id) { return id == 99; };
  const CocoDataset ds = semat::data::parse_coco(kSmall, "small.json", o);
  EXPECT_TRUE(ds.images.empty());
  ASSERT_EQ(ds.annotations.size(), 1u);
  EXPECT_EQ(ds.annotations[0].id, 14);
  EXPECT_EQ(ds.categories.size(), 2u);  // categories are never filtered
}

TEST(Coco, MalformedJsonReportsTheByteOffset) {
  const std::string text = R"({"images": [{"id": 1,}], "annotations": []})";
  // The '}' after the trailing comma is byte 22 (1-based, as nlohmann counts).
  try {
    semat::data::parse_coco(text, "bad.json");
    FAIL() << "no error";
  } catch (const semat::DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("malformed JSON at byte 22"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  // Truncated file: the offset is the end of the data.
  const std::string cut = std::string(kSmall).substr(0, 100);
  try {
    semat::data::parse_coco(cut, "cut.json");
    FAIL() << "no error";
  } catch (const semat::DataError& e) {
    const std::string msg = e.what();
    const size_t at = msg.find("at byte ");
    ASSERT_NE(at, std::string::npos) << msg;
    EXPECT_GE(std::stoul(msg.substr(at + 8)), 100u) << msg;
  }
}

// Issue #14: hostile numbers and nesting are clean DataErrors (exit 3), never truncated or crashes.
TEST(Coco, HostileValuesAreRefusedCleanly) {
  auto expect_error = [](const std::string& text, const std::string& part) {
    try {
      semat::data::parse_coco(text, "evil.json");
      ADD_FAILURE() << "no DataError for " << part;
    } catch (const semat::DataError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("evil.json"), std::string::npos) << msg;
      EXPECT_NE(msg.find(part), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      EXPECT_LT(msg.size(), 400u) << msg;
    }
  };
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  expect_error(R"({"images": [{"id": 1, "file_name": )" + deep + R"(, "width": 8, "height": 5}],)"
                   R"( "annotations": [], "categories": []})",
               "nested deeper than");
  expect_error(R"({"images": [], "annotations": [{"id": 1, "segmentation": )" + deep +
                   R"(}], "categories": []})",
               "nested deeper than");
  expect_error(R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 1e400, "height": 5}],)"
               R"( "annotations": [], "categories": []})",
               "malformed JSON");
  expect_error(R"({"images": [{"id": 7, "file_name": "a.jpg", "width": 8, "height": 5},)"
               R"( {"id": 7, "file_name": "b.jpg", "width": 8, "height": 5}],)"
               R"( "annotations": [], "categories": []})",
               "image id 7 appears twice");
  // 2^32 + 160 used to be read as 160; a 64-bit id is fine.
  const CocoDataset ds = semat::data::parse_coco(
      R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 4294967456, "height": 5},)"
      R"( {"id": 9007199254740993, "file_name": "b.jpg", "width": 8, "height": 5.0},)"
      R"( {"id": 3, "file_name": "c.jpg", "width": 8, "height": 5.5}],)"
      R"( "annotations": [{"id": 1, "image_id": 3, "category_id": 1,)"
      R"( "segmentation": {"size": [4294967301, 8], "counts": [40]}}], "categories": []})",
      "big.json");
  EXPECT_EQ(ds.images.size(), 1u);
  EXPECT_EQ(ds.images.count(9007199254740993), 1u);
  ASSERT_EQ(ds.image_errors.size(), 2u);
  EXPECT_NE(ds.image_errors[0].find("\"width\" must be an integer in [1, 2147483647], got number 4294967456"),
            std::string::npos)
      << ds.image_errors[0];
  EXPECT_NE(ds.image_errors[1].find("\"height\""), std::string::npos) << ds.image_errors[1];
  ASSERT_EQ(ds.annotations.size(), 1u);
  EXPECT_NE(ds.annotations[0].error.find("RLE \"size\" height"), std::string::npos) << ds.annotations[0].error;
}

// Issue #14: a polygon with a vertex near 1e8 made the rasteriser walk billions of points.
TEST(Coco, FarPolygonIsClippedToTheImage) {
  const CocoDataset ds = semat::data::parse_coco(
      R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 6, "height": 6}],)"
      R"( "annotations": [{"id": 1, "image_id": 1, "category_id": 1,)"
      R"( "segmentation": [[2, 2, 1e8, 2, 1e8, 4, 2, 4]]},)"
      R"( {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[-1e300, -1e300, 1e300, -1e300, 0, 1e300]]}],)"
      R"( "categories": []})",
      "far.json");
  ASSERT_EQ(ds.annotations.size(), 2u);
  const cv::Mat m = semat::data::decode_mask(ds.annotations[0], ds.images.at(1), cv::Mat());
  EXPECT_EQ(cv::countNonZero(m), 8);  // x 2..5, y 2..3
  EXPECT_EQ(cv::countNonZero(m(cv::Rect(2, 2, 4, 2))), 8);
  const cv::Mat all = semat::data::decode_mask(ds.annotations[1], ds.images.at(1), cv::Mat());
  EXPECT_EQ(cv::countNonZero(all), 36);
}

TEST(Coco, MissingSectionsAreNamed) {
  try {
    semat::data::parse_coco(R"({"images": [], "categories": []})", "x.json");
    FAIL() << "no error";
  } catch (const semat::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("\"annotations\" is missing"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(semat::data::parse_coco("[1, 2]", "x.json"), semat::DataError);
  EXPECT_THROW(semat::data::load_coco("/nonexistent/semat/ann.json"), semat::IoError);
}

TEST(Coco, PanopticSegmentsFromPng) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "semat_test_panoptic";
  fs::remove_all(dir);
  fs::create_directories(dir);
  // Segment 1000 = R 232 + 256 * G 3; segment 70000 = R 112 + 256 * G 17 + 65536 * B 1.
  cv::Mat png(6, 10, CV_8UC3, cv::Scalar(0, 0, 0));
  png(cv::Rect(1, 1, 3, 4)).setTo(cv::Scalar(0, 3, 232));  // OpenCV order B, G, R
  png(cv::Rect(6, 0, 4, 2)).setTo(cv::Scalar(1, 17, 112));
  ASSERT_TRUE(cv::imwrite((dir / "seg_5.png").string(), png));
  const std::string text = R"({
    "images": [{"id": 5, "file_name": "5.jpg", "width": 10, "height": 6}],
    "annotations": [{"image_id": 5, "file_name": "seg_5.png", "segments_info": [
        {"id": 1000, "category_id": 1, "iscrowd": 0, "bbox": [1, 1, 3, 4]},
        {"id": 70000, "category_id": 2, "iscrowd": 0, "bbox": [6, 0, 4, 2]}]}],
    "categories": [{"id": 1, "name": "person", "isthing": 1}, {"id": 2, "name": "tie", "isthing": 1}]
  })";
  const CocoDataset ds = semat::data::parse_coco(text, "pan.json");
  EXPECT_TRUE(ds.panoptic);
  ASSERT_EQ(ds.annotations.size(), 2u);
  EXPECT_EQ(ds.annotations[1].id, 70000);
  EXPECT_EQ(ds.annotations[0].segmentation.png, "seg_5.png");
  const cv::Mat ids = semat::data::panoptic_ids(cv::imread((dir / "seg_5.png").string()));
  EXPECT_EQ(ids.at<int>(2, 2), 1000);
  EXPECT_EQ(ids.at<int>(0, 7), 70000);
  const cv::Mat person = semat::data::decode_mask(ds.annotations[0], ds.images.at(5), ids);
  const cv::Mat tie = semat::data::decode_mask(ds.annotations[1], ds.images.at(5), ids);
  EXPECT_EQ(cv::countNonZero(person), 12);
  EXPECT_EQ(cv::countNonZero(person(cv::Rect(1, 1, 3, 4))), 12);
  EXPECT_EQ(cv::countNonZero(tie), 8);
  fs::remove_all(dir);
}

TEST(Coco, FixtureMasksDecodeExactly) {
  const auto scenes = semat::test::person_scenes(1);
  const CocoDataset ds = semat::data::parse_coco(semat::test::fixture_coco(scenes).dump(), "fx");
  const semat::data::CocoImage& im = ds.images.at(1);
  for (size_t i = 0; i < ds.annotations.size(); ++i) {
    const cv::Mat m = semat::data::decode_mask(ds.annotations[i], im);
    EXPECT_EQ(cv::countNonZero(m != scenes[0].instances[i].mask), 0) << "instance " << i;
  }
}

}  // namespace
