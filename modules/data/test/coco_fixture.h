// Synthetic COCO data for the builder's tests, made in the test: images of a "person" (body,
// head, raised arm) holding a bottle and wearing a tie, with a ball lying inside the person's box
// but far from the person, over a smooth textured background; and the matching COCO JSON with
// every segmentation encoding (person and ball: compressed RLE strings; tie: a polygon; bottle:
// uncompressed RLE).
#pragma once

#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "semat/data/rle.h"

namespace semat::test {

// Category ids deliberately differ from COCO's: the builder must find categories by name.
constexpr int kPersonCat = 7, kTieCat = 70, kBottleCat = 71, kBallCat = 72, kCarCat = 73;

struct FixtureInstance {
  std::int64_t id = 0;
  int category = 0;
  cv::Mat mask;  ///< CV_8U 0/255
  enum class Encoding { kPolygon, kRleString, kRleCounts } encoding = Encoding::kRleString;
};

struct FixtureImage {
  std::int64_t id = 0;
  std::string file_name;
  cv::Mat image;  ///< CV_8UC3
  std::vector<FixtureInstance> instances;
};

inline cv::Mat fixture_background(int w, int h, unsigned seed) {
  cv::Mat bg(h, w, CV_8UC3);
  const double p = 0.5 + (seed % 7) * 0.3;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      bg.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uchar>(90 + 40 * std::sin(x * 0.05 * p + y * 0.02)),
                    static_cast<uchar>(110 + 30 * std::cos(y * 0.04 * p)),
                    static_cast<uchar>(70 + 30 * std::sin((x + y) * 0.03)));
  return bg;
}

/// One person scene. Annotation ids are first_ann_id .. first_ann_id + 3 in the order person,
/// tie, bottle, ball. `scale` scales the geometry of a 160 x 120 layout.
inline FixtureImage person_scene(std::int64_t image_id, std::int64_t first_ann_id, unsigned seed,
                                 double scale = 1.0) {
  const int w = static_cast<int>(160 * scale), h = static_cast<int>(120 * scale);
  auto S = [&](double v) { return static_cast<int>(v * scale); };
  FixtureImage fi;
  fi.id = image_id;
  fi.file_name = "img_" + std::to_string(image_id) + ".png";
  cv::Mat person(h, w, CV_8U, cv::Scalar(0)), tie(h, w, CV_8U, cv::Scalar(0)),
      bottle(h, w, CV_8U, cv::Scalar(0)), ball(h, w, CV_8U, cv::Scalar(0));
  cv::ellipse(person, {S(60), S(75)}, {S(20), S(35)}, 0, 0, 360, 255, cv::FILLED);  // body
  cv::circle(person, {S(60), S(30)}, S(12), 255, cv::FILLED);                       // head
  cv::rectangle(person, cv::Rect(S(72), S(40), S(50), S(8)), 255, cv::FILLED);      // arm
  cv::rectangle(tie, cv::Rect(S(57), S(50), S(6), S(25)), 255, cv::FILLED);         // on body
  cv::rectangle(bottle, cv::Rect(S(114), S(26), S(8), S(14)), 255, cv::FILLED);     // in hand
  cv::circle(ball, {S(112), S(100)}, S(6), 255, cv::FILLED);  // in the box, far from the body
  person.setTo(0, tie);  // the tie covers the body, as in COCO where instances do not overlap
  fi.image = fixture_background(w, h, seed);
  fi.image.setTo(cv::Scalar(40, 60, 200), person);
  fi.image.setTo(cv::Scalar(200, 40, 40), tie);
  fi.image.setTo(cv::Scalar(60, 200, 60), bottle);
  fi.image.setTo(cv::Scalar(250, 250, 250), ball);
  cv::GaussianBlur(fi.image, fi.image, {0, 0}, 0.6);  // soft edges like a real photo
  using E = FixtureInstance::Encoding;
  fi.instances = {{first_ann_id, kPersonCat, person, E::kRleString},
                  {first_ann_id + 1, kTieCat, tie, E::kPolygon},
                  {first_ann_id + 2, kBottleCat, bottle, E::kRleCounts},
                  {first_ann_id + 3, kBallCat, ball, E::kRleString}};
  return fi;
}

inline nlohmann::json fixture_segmentation(const FixtureInstance& in) {
  using nlohmann::json;
  if (in.encoding == FixtureInstance::Encoding::kPolygon) {
    // Only rectangles are stored as polygons: COCO rasterises a polygon through the corners
    // (x0, y0) and (x1 + 1, y1 + 1) to exactly the pixels x0..x1, y0..y1.
    const cv::Rect b = cv::boundingRect(in.mask);
    return json::array(
        {{b.x, b.y, b.x + b.width, b.y, b.x + b.width, b.y + b.height, b.x, b.y + b.height}});
  }
  const data::Rle r = data::rle_from_mask(in.mask);
  json counts;
  if (in.encoding == FixtureInstance::Encoding::kRleString)
    counts = data::rle_to_string(r);
  else
    counts = r.counts;
  return {{"size", {r.height, r.width}}, {"counts", counts}};
}

inline nlohmann::json fixture_categories() {
  return nlohmann::json::array(
      {{{"id", kPersonCat}, {"name", "person"}, {"supercategory", "person"}},
       {{"id", kTieCat}, {"name", "tie"}, {"supercategory", "accessory"}},
       {{"id", kBottleCat}, {"name", "bottle"}, {"supercategory", "kitchen"}},
       {{"id", kBallCat}, {"name", "sports ball"}, {"supercategory", "sports"}},
       {{"id", kCarCat}, {"name", "car"}, {"supercategory", "vehicle"}}});
}

/// The instances JSON of `images` (categories after annotations, as in COCO's own files).
inline nlohmann::json fixture_coco(const std::vector<FixtureImage>& images) {
  using nlohmann::json;
  json doc = {{"info", {{"description", "semat test"}}},
              {"images", json::array()},
              {"annotations", json::array()}};
  for (const FixtureImage& fi : images) {
    doc["images"].push_back({{"id", fi.id},
                             {"file_name", fi.file_name},
                             {"width", fi.image.cols},
                             {"height", fi.image.rows}});
    for (const FixtureInstance& in : fi.instances) {
      const cv::Rect b = cv::boundingRect(in.mask);
      doc["annotations"].push_back({{"id", in.id},
                                    {"image_id", fi.id},
                                    {"category_id", in.category},
                                    {"iscrowd", 0},
                                    {"area", cv::countNonZero(in.mask)},
                                    {"bbox", {b.x, b.y, b.width, b.height}},
                                    {"segmentation", fixture_segmentation(in)}});
    }
  }
  doc["categories"] = fixture_categories();
  return doc;
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

/// Writes the images into `image_dir` and the JSON to `json_path`.
inline void write_fixture(const std::vector<FixtureImage>& images, const std::string& image_dir,
                          const std::string& json_path) {
  for (const FixtureImage& fi : images) cv::imwrite(image_dir + "/" + fi.file_name, fi.image);
  write_text(json_path, fixture_coco(images).dump());
}

/// `n` person scenes with image ids 1..n and annotation ids 100 * id + 0..3.
inline std::vector<FixtureImage> person_scenes(int n, double scale = 1.0) {
  std::vector<FixtureImage> out;
  for (int i = 1; i <= n; ++i) out.push_back(person_scene(i, 100 * i, i, scale));
  return out;
}

}  // namespace semat::test
