// The builder end to end on synthetic COCO data made here: fusion, mask-to-matte, outputs,
// skip reasons, resume after a crash, shards and merging.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "coco_fixture.h"
#include "semat/core/error.h"
#include "semat/data/builder.h"
#include "semat/data/index.h"
#include "semat/matting/trimap.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<json> read_lines(const fs::path& p) {
  return semat::data::read_journal(p.string(), false).lines;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class Builder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("semat_data_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "images");
    ann_ = (dir_ / "ann.json").string();
    opt_.annotations = ann_;
    opt_.images = (dir_ / "images").string();
    opt_.out = (dir_ / "out").string();
    opt_.jobs = 2;
    opt_.min_score = 0;
    opt_.progress = semat::data::ProgressMode::kOff;
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::vector<semat::test::FixtureImage>& scenes) {
    semat::test::write_fixture(scenes, opt_.images, ann_);
  }
  json build() { return semat::data::build_dataset(opt_, engine_); }

  fs::path dir_;
  std::string ann_;
  semat::data::BuildOptions opt_;
  semat::engine::EngineSpec engine_;  // closed-form on the fused masks
};

TEST_F(Builder, FusesTieAndBottleAndWritesOutputs) {
  const auto scenes = semat::test::person_scenes(2);
  write(scenes);
  const json s = build();
  EXPECT_EQ(s["persons"], 2);
  EXPECT_EQ(s["kept"], 2);
  EXPECT_EQ(s["kept_new"], 2);
  EXPECT_EQ(s["fused_accessories"], 4);
  EXPECT_TRUE(s["skipped"].empty()) << s.dump();
  EXPECT_EQ(json::parse(slurp(dir_ / "out" / "summary.json")), s);

  const auto lines = read_lines(dir_ / "out" / "index.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  for (const json& j : lines) {
    const auto r = semat::data::IndexRecord::from_json(j, "index");
    const auto& scene = scenes[static_cast<size_t>(r.image_id - 1)];
    EXPECT_EQ(r.ann_id, 100 * r.image_id);
    EXPECT_EQ(r.fused_ids, (std::vector<std::int64_t>{100 * r.image_id + 1, 100 * r.image_id + 2}));
    EXPECT_EQ(r.fused_categories, (std::vector<std::string>{"tie", "bottle"}));
    EXPECT_EQ(r.backend, "closed-form");
    EXPECT_EQ(r.image, scene.file_name);
    EXPECT_EQ(r.alpha,
              "alpha/" + std::to_string(r.image_id) + "_" + std::to_string(r.ann_id) + ".png");
    EXPECT_GT(r.score, 95) << "a crisp synthetic person should be matted almost exactly";
    EXPECT_LE(r.score, 100);

    // The trimap is matting::mask_to_trimap of the fused mask (person + tie + bottle, no ball).
    cv::Mat fused = scene.instances[0].mask | scene.instances[1].mask | scene.instances[2].mask;
    EXPECT_EQ(r.area, cv::countNonZero(fused));
    semat::matting::TrimapParams tp;
    const auto expected = semat::matting::mask_to_trimap(fused, tp);
    const cv::Mat trimap = cv::imread((dir_ / "out" / r.trimap).string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(trimap.type(), CV_8UC1);
    EXPECT_EQ(cv::countNonZero(trimap != expected.trimap), 0);
    EXPECT_DOUBLE_EQ(r.omega, expected.omega);
    const cv::Mat alpha = cv::imread((dir_ / "out" / r.alpha).string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(alpha.type(), CV_8UC1);
    ASSERT_EQ(alpha.size(), scene.image.size());
    // The ball is not part of the matte.
    EXPECT_EQ(cv::countNonZero(alpha(cv::Rect(108, 96, 8, 8)) > 127), 0);
    EXPECT_GT(cv::countNonZero(alpha(cv::Rect(114, 26, 8, 14)) > 127), 100);  // the bottle is
  }
}

TEST_F(Builder, TrimapBandWidthFollowsArea) {
  // Squares of side 60 and 120: dilated by 2 px each side, area ~ 64^2 and 124^2, so
  // omega = round(sqrt(area / 12)) = 18 and 36, and the unknown band across an edge is omega
  // pixels wide (erosion by a disc of diameter omega + 1 moves each side by omega / 2).
  semat::test::FixtureImage fi;
  fi.id = 1;
  fi.file_name = "sq.png";
  fi.image = semat::test::fixture_background(300, 200, 3);
  cv::Mat a(200, 300, CV_8U, cv::Scalar(0)), b(200, 300, CV_8U, cv::Scalar(0));
  a(cv::Rect(20, 60, 60, 60)).setTo(255);
  b(cv::Rect(150, 40, 120, 120)).setTo(255);
  fi.image.setTo(cv::Scalar(30, 30, 220), a);
  fi.image.setTo(cv::Scalar(30, 220, 30), b);
  fi.instances = {
      {10, semat::test::kPersonCat, a, semat::test::FixtureInstance::Encoding::kPolygon},
      {11, semat::test::kPersonCat, b, semat::test::FixtureInstance::Encoding::kPolygon}};
  write({fi});
  const json s = build();
  ASSERT_EQ(s["kept"], 2) << s.dump();
  for (const json& j : read_lines(dir_ / "out" / "index.jsonl")) {
    const auto r = semat::data::IndexRecord::from_json(j, "index");
    const bool small = r.ann_id == 10;
    EXPECT_EQ(r.omega, small ? 18 : 36);
    const cv::Mat t = cv::imread((dir_ / "out" / r.trimap).string(), cv::IMREAD_UNCHANGED);
    const int row = small ? 90 : 100, x0 = small ? 0 : 120, x1 = small ? 50 : 210;
    const int band = cv::countNonZero(t.row(row).colRange(x0, x1) == semat::matting::kUnknown);
    EXPECT_EQ(band, static_cast<int>(r.omega)) << "ann " << r.ann_id;
  }
}

TEST_F(Builder, ResumesAfterACrash) {
  write(semat::test::person_scenes(3));
  opt_.limit = 2;
  json s = build();
  ASSERT_EQ(s["kept_new"], 2);
  const fs::path index = dir_ / "out" / "index.jsonl";
  // What kill -9 can leave: a torn last index line and a temporary PNG of an instance in flight.
  {
    std::ofstream f(index, std::ios::app | std::ios::binary);
    f << R"({"image_id":3,"ann_id":300,"image":"img_3.p)";
  }
  const fs::path temp = dir_ / "out" / "alpha" / ".3_300.png.tmp4242_1_0";
  semat::test::write_text(temp.string(), "half a png");
  opt_.limit = 0;
  s = build();
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_EQ(s["resumed"], 2);
  EXPECT_EQ(s["kept_new"], 1);
  EXPECT_EQ(s["kept"], 3);
  EXPECT_EQ(s["index_repairs"], 1);
  EXPECT_EQ(s["stale_temp_files_removed"], 1);
  const std::string text = slurp(index);
  EXPECT_EQ(text.back(), '\n');
  const auto jc = semat::data::read_journal(index.string(), false);
  EXPECT_EQ(jc.lines.size(), 3u);
  EXPECT_EQ(jc.corrupt_lines, 0);
  EXPECT_EQ(jc.torn_bytes, 0u);

  // A record whose PNG vanished is built again; a complete rerun solves nothing.
  fs::remove(dir_ / "out" / "alpha" / "2_200.png");
  s = build();
  EXPECT_EQ(s["kept_new"], 1);
  EXPECT_EQ(s["resumed"], 2);
  s = build();
  EXPECT_EQ(s["kept_new"], 0);
  EXPECT_EQ(s["solved"], 0);
  EXPECT_EQ(s["kept"], 3);
}

TEST_F(Builder, LowScoresAreJournaledAndNotSolvedAgain) {
  auto scenes = semat::test::person_scenes(1);
  // The annotation no longer matches the picture: shift the person's mask by 6 px.
  cv::Mat shifted(scenes[0].instances[0].mask.size(), CV_8U, cv::Scalar(0));
  scenes[0].instances[0].mask(cv::Rect(0, 0, 154, 120)).copyTo(shifted(cv::Rect(6, 0, 154, 120)));
  shifted.setTo(0, scenes[0].instances[1].mask);
  scenes[0].instances[0].mask = shifted;
  write(scenes);
  opt_.min_score = 95;
  json s = build();
  EXPECT_EQ(s["kept"], 0);
  EXPECT_EQ(s["skipped"]["low_score"], 1);
  EXPECT_FALSE(fs::exists(dir_ / "out" / "alpha" / "1_100.png"));
  s = build();
  EXPECT_EQ(s["solved"], 0);
  EXPECT_EQ(s["skipped"]["low_score"], 1);
}

TEST_F(Builder, BadInputsAreSkippedAndCountedByReason) {
  auto scenes = semat::test::person_scenes(5);
  write(scenes);
  fs::remove(fs::path(opt_.images) / "img_2.png");  // missing image
  {                                                 // truncated image
    const std::string png = slurp(fs::path(opt_.images) / "img_3.png");
    semat::test::write_text((fs::path(opt_.images) / "img_3.png").string(),
                            png.substr(0, png.size() / 2));
  }
  json doc = json::parse(slurp(ann_));
  for (json& a : doc["annotations"]) {
    if (a["id"] == 400) a["segmentation"]["counts"] = "05n";  // broken person RLE
    if (a["id"] == 401) a["segmentation"] = "oops";           // broken accessory
    if (a["id"] == 500) a["iscrowd"] = 1;                     // a crowd is not an instance
  }
  doc["annotations"].push_back({{"id", 900},
                                {"image_id", 77},
                                {"category_id", 7},
                                {"segmentation", {{0, 0, 5, 0, 5, 5}}}});  // unknown image
  doc["annotations"].push_back({{"id", 901},
                                {"image_id", 1},
                                {"category_id", 73},
                                {"segmentation", "whatever"}});  // broken, but a car: ignored
  semat::test::write_text(ann_, doc.dump());
  const json s = build();
  const json& k = s["skipped"];
  EXPECT_EQ(k["missing_image"], 1) << s.dump();
  EXPECT_EQ(k["bad_image"], 1);
  EXPECT_EQ(k["broken_segmentation"], 1);
  EXPECT_EQ(k["accessory_broken_segmentation"], 1);
  EXPECT_EQ(k["crowd"], 1);
  EXPECT_EQ(k["unknown_image"], 1);
  EXPECT_EQ(k.size(), 6u) << k.dump();
  EXPECT_EQ(s["kept"], 1);  // image 1 only
  EXPECT_EQ(s["persons"], 4);
}

TEST_F(Builder, FatalErrors) {
  semat::test::write_text(ann_,
                          R"({"images": [], "annotations": [ {"id": 1,, ], "categories": []})");
  try {
    build();
    FAIL();
  } catch (const semat::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("malformed JSON at byte 42"), std::string::npos)
        << e.what();
  }
  json doc = semat::test::fixture_coco(semat::test::person_scenes(1));
  doc["categories"].erase(0);  // no 'person'
  semat::test::write_text(ann_, doc.dump());
  EXPECT_THROW(build(), semat::DataError);
  opt_.eta = 0;
  EXPECT_THROW(build(), semat::ConfigError);
}

TEST_F(Builder, ResumingWithOtherParametersIsRefused) {
  write(semat::test::person_scenes(1));
  build();
  opt_.fusion.tau = 0.5;
  try {
    build();
    FAIL();
  } catch (const semat::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("tau 0.8 -> 0.5"), std::string::npos) << e.what();
  }
  opt_.fusion.tau = 0.8;
  opt_.export_concat = true;  // adding the concatenated export later is fine
  const json s = build();
  EXPECT_EQ(s["kept_new"], 1);  // rebuilt to get its concatenated file
}

TEST_F(Builder, SecondRunOnTheSameShardIsRefused) {
  write(semat::test::person_scenes(1));
  fs::create_directories(opt_.out);
  const int fd = ::open((fs::path(opt_.out) / ".build.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  EXPECT_THROW(build(), semat::ConfigError);
  ::close(fd);
  EXPECT_EQ(build()["kept"], 1);
}

TEST_F(Builder, ExportsTheConcatenatedLayout) {
  const auto scenes = semat::test::person_scenes(1);
  write(scenes);
  opt_.export_concat = true;
  build();
  const auto r =
      semat::data::IndexRecord::from_json(read_lines(dir_ / "out" / "index.jsonl")[0], "i");
  ASSERT_EQ(r.concat, "SEMat_concat/1_100.png");
  const cv::Mat c = cv::imread((dir_ / "out" / r.concat).string(), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(c.type(), CV_8UC3);
  ASSERT_EQ(c.cols, 3 * 160);
  ASSERT_EQ(c.rows, 120);
  const cv::Mat alpha = cv::imread((dir_ / "out" / r.alpha).string(), cv::IMREAD_GRAYSCALE);
  const cv::Mat trimap = cv::imread((dir_ / "out" / r.trimap).string(), cv::IMREAD_GRAYSCALE);
  cv::Mat ch[3];
  cv::split(c, ch);
  EXPECT_EQ(cv::countNonZero(ch[0](cv::Rect(160, 0, 160, 120)) != alpha), 0);   // panel 1
  EXPECT_EQ(cv::countNonZero(ch[0](cv::Rect(320, 0, 160, 120)) != trimap), 0);  // panel 2
  cv::Mat img0;
  cv::extractChannel(scenes[0].image, img0, 0);
  EXPECT_EQ(cv::countNonZero(ch[0](cv::Rect(0, 0, 160, 120)) != img0), 0);  // panel 0
}

TEST(Shard, PartitionIsDisjointCompleteAndBalanced) {
  for (int n : {1, 2, 3, 8}) {
    std::vector<int> per(n, 0);
    for (std::int64_t id = 1; id <= 4000; ++id) {
      int owners = 0;
      for (int k = 0; k < n; ++k)
        if (semat::data::Shard{k, n}.contains(id)) {
          ++owners;
          ++per[k];
        }
      ASSERT_EQ(owners, 1) << "image " << id << " with " << n << " shards";
    }
    for (int k = 0; k < n; ++k) EXPECT_NEAR(per[k], 4000.0 / n, 4000.0 / n * 0.15);
  }
  EXPECT_EQ(semat::data::parse_shard("2/5").index, 2);
  EXPECT_EQ(semat::data::Shard({2, 5}).suffix(), "-2-of-5");
  EXPECT_THROW(semat::data::parse_shard("5/5"), semat::ConfigError);
  EXPECT_THROW(semat::data::parse_shard("1-4"), semat::ConfigError);
}

TEST_F(Builder, ShardsAreDisjointCoverEverythingAndMerge) {
  write(semat::test::person_scenes(8, 0.5));
  opt_.out = (dir_ / "full").string();
  build();
  std::set<std::pair<std::int64_t, std::int64_t>> full;
  for (const json& j : read_lines(dir_ / "full" / "index.jsonl"))
    full.insert({j["image_id"].get<std::int64_t>(), j["ann_id"].get<std::int64_t>()});
  ASSERT_EQ(full.size(), 8u);

  // Three shards share one folder; a fourth layout uses a folder per shard.
  std::set<std::pair<std::int64_t, std::int64_t>> seen;
  std::vector<std::string> shard_dirs;
  for (int k = 0; k < 3; ++k) {
    opt_.shard = {k, 3};
    opt_.out = (dir_ / "shared").string();
    build();
    for (const json& j :
         read_lines(dir_ / "shared" / ("index-" + std::to_string(k) + "-of-3.jsonl"))) {
      const auto key =
          std::make_pair(j["image_id"].get<std::int64_t>(), j["ann_id"].get<std::int64_t>());
      EXPECT_TRUE(seen.insert(key).second) << "instance in two shards";
      EXPECT_TRUE(semat::data::Shard({k, 3}).contains(key.first));
    }
    opt_.out = (dir_ / ("shard" + std::to_string(k))).string();
    build();
    shard_dirs.push_back(opt_.out);
  }
  EXPECT_EQ(seen, full);

  semat::data::MergeOptions m;
  m.inputs = {(dir_ / "shared").string()};
  m.out = (dir_ / "shared").string();
  m.verify = true;
  json ms = semat::data::merge_indexes(m);
  EXPECT_EQ(ms["kept"], 8);
  EXPECT_EQ(ms["duplicates"], 0);
  EXPECT_EQ(ms["persons"], 8);

  m.inputs = shard_dirs;
  m.out = (dir_ / "merged").string();
  ms = semat::data::merge_indexes(m);
  EXPECT_EQ(ms["kept"], 8);
  EXPECT_EQ(ms["dropped_unverified"], 0);
  const auto lines = read_lines(dir_ / "merged" / "index.jsonl");
  ASSERT_EQ(lines.size(), 8u);
  std::int64_t prev = -1;
  for (const json& j : lines) {
    const std::string alpha = j["alpha"];
    EXPECT_EQ(alpha.rfind("../shard", 0), 0u) << alpha;  // rebased onto the merged folder
    EXPECT_TRUE(semat::data::png_file_complete((dir_ / "merged" / alpha).string()));
    EXPECT_GT(j["image_id"].get<std::int64_t>(), prev);  // sorted
    prev = j["image_id"];
  }
}

}  // namespace

// Issue #14: a journal line nested 300k levels deep (a planted or damaged index) is a corrupt
// line, skipped on resume, not a stack overflow.
TEST(Journal, DeeplyNestedLineIsCorruptNotACrash) {
  const fs::path p = fs::temp_directory_path() / ("semat_journal_" + std::to_string(::getpid()) + ".jsonl");
  {
    std::ofstream out(p);
    out << "{\"image_id\": 1, \"ann_id\": 2}\n";
    out << "{\"x\": " << std::string(300000, '[') << std::string(300000, ']') << "}\n";
    out << "{\"image_id\": 3, \"ann_id\": 4}\n";
  }
  const auto jc = semat::data::read_journal(p.string(), false);
  EXPECT_EQ(jc.lines.size(), 2u);
  EXPECT_EQ(jc.corrupt_lines, 1);
  fs::remove(p);
}
