// semat build-dataset / merge-index as a user runs them, on synthetic COCO data made here.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "coco_fixture.h"
#include "semat/data/index.h"
#include "support/cli.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using semat::test::CliRun;

class CliBuildDataset : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("semat_e2e_bd_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "images");
    ann_ = (dir_ / "ann.json").string();
    images_ = (dir_ / "images").string();
    out_ = (dir_ / "out").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(int n, double scale = 1.0) {
    semat::test::write_fixture(semat::test::person_scenes(n, scale), images_, ann_);
  }

  std::string base() const {
    return "build-dataset --annotations " + ann_ + " --images " + images_;
  }

  CliRun run(const std::string& args) { return semat::test::run_cli(SEMAT_BINARY, args, dir_); }

  static int lines(const std::string& s) {
    return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
  }

  fs::path dir_;
  std::string ann_, images_, out_;
};

TEST_F(CliBuildDataset, BuildsWithTheDefaults) {
  write(3);
  const CliRun r = run(base() + " --out " + out_ + " --jobs 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("kept 3 of 3 person instances"), std::string::npos) << r.out;
  // Not a terminal: plain progress log lines, no carriage returns.
  EXPECT_NE(r.err.find("progress: 3/3 instances"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos);
  const auto jc = semat::data::read_journal(out_ + "/index.jsonl", false);
  ASSERT_EQ(jc.lines.size(), 3u);
  for (const json& j : jc.lines) {
    EXPECT_GE(j["score"].get<double>(), 95.0);
    EXPECT_EQ(j["fused_categories"], json({"tie", "bottle"}));
    EXPECT_TRUE(fs::exists(out_ + "/" + j["alpha"].get<std::string>()));
    EXPECT_TRUE(fs::exists(out_ + "/" + j["trimap"].get<std::string>()));
  }
  std::ifstream sf(out_ + "/summary.json");
  const json s = json::parse(sf);
  EXPECT_EQ(s["kept"], 3);
  EXPECT_EQ(s["params"]["overlap"], "ioa");
  EXPECT_EQ(s["params"]["min_score"], 95.0);
}

TEST_F(CliBuildDataset, SkippedImagesWarnOnceAndAreCounted) {
  write(3);
  fs::remove(images_ + "/img_2.png");
  const CliRun r = run(base() + " --out " + out_ + " --json --progress off");
  ASSERT_EQ(r.code, 0) << r.err;
  int warnings = 0;
  std::istringstream es(r.err);
  for (std::string line; std::getline(es, line);)
    if (line.find("missing_image") != std::string::npos) ++warnings;
  EXPECT_EQ(warnings, 1) << r.err;
  const json s = json::parse(r.out);
  EXPECT_EQ(s["skipped"]["missing_image"], 1);
  EXPECT_EQ(s["kept"], 2);
}

TEST_F(CliBuildDataset, KillNineThenResume) {
  write(16, 1.5);
  // Kill the build at some moment while it runs; whatever the moment, the rerun must finish
  // with a clean index, every indexed file complete and no temporary files left.
  const std::string cmd = std::string(SEMAT_BINARY) + " " + base() + " --out " + out_ +
                          " --jobs 1 --progress off >/dev/null 2>&1 & pid=$!; sleep 0.8; "
                          "kill -9 $pid; wait $pid 2>/dev/null; true";
  ASSERT_EQ(std::system(("bash -c '" + cmd + "'").c_str()), 0);
  // Add what a crash mid-write would leave, in case the kill landed between lines.
  fs::create_directories(out_ + "/alpha");
  { std::ofstream(out_ + "/index.jsonl", std::ios::app) << R"({"image_id":16,"ann_)"; }
  { std::ofstream(out_ + "/alpha/.16_1600.png.tmp99_1_2") << "partial"; }
  const CliRun r = run(base() + " --out " + out_ + " --json --progress off");
  ASSERT_EQ(r.code, 0) << r.err;
  const json s = json::parse(r.out);
  EXPECT_EQ(s["kept"], 16);
  // Informational: whether the kill landed mid-run depends on the machine's speed.
  std::cout << "[          ] killed run had built " << s["resumed"] << " of 16\n";
  EXPECT_EQ(s["index_repairs"], 1);
  const auto jc = semat::data::read_journal(out_ + "/index.jsonl", false);
  EXPECT_EQ(jc.torn_bytes, 0u);
  EXPECT_EQ(jc.corrupt_lines, 0);
  std::set<std::int64_t> ids;
  for (const json& j : jc.lines) {
    ids.insert(j["image_id"].get<std::int64_t>());
    EXPECT_TRUE(semat::data::png_file_complete(out_ + "/" + j["alpha"].get<std::string>()));
  }
  EXPECT_EQ(ids.size(), 16u);
  for (const char* d : {"alpha", "trimap"})
    for (const auto& e : fs::directory_iterator(out_ + "/" + d))
      EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
}

TEST_F(CliBuildDataset, ShardsThenMergeIndex) {
  write(6, 0.5);
  for (int k = 0; k < 2; ++k) {
    const CliRun r = run(base() + " --out " + out_ + " --shard " + std::to_string(k) +
                         "/2 --export-concat --progress off");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  EXPECT_TRUE(fs::exists(out_ + "/index-0-of-2.jsonl"));
  EXPECT_TRUE(fs::exists(out_ + "/summary-1-of-2.json"));
  const CliRun m = run("merge-index " + out_ + " --out " + out_ + " --verify");
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_NE(m.out.find("6 instances (0 duplicates, 0 dropped)"), std::string::npos) << m.out;
  const auto jc = semat::data::read_journal(out_ + "/index.jsonl", false);
  ASSERT_EQ(jc.lines.size(), 6u);
  EXPECT_TRUE(fs::exists(out_ + "/" + jc.lines[0]["concat"].get<std::string>()));
}

TEST_F(CliBuildDataset, MalformedJsonIsFatalWithTheByteOffset) {
  semat::test::write_text(ann_, R"({"images": [{"id": 1 "file_name": "a.png"}]})");
  const CliRun r = run(base() + " --out " + out_);
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  // nlohmann reports the byte where the unexpected token ("file_name" after 1) ends.
  EXPECT_NE(r.err.find("malformed JSON at byte 32"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(ann_), std::string::npos) << r.err;
}

TEST_F(CliBuildDataset, FlagErrors) {
  write(1);
  // A missing checkpoint is named (exit 3); a build without LibTorch says it lacks the model (2).
  CliRun r = run(base() + " --out " + out_ + " --backend semat --semat x.pth --sam y.pth");
  EXPECT_EQ(lines(r.err), 1) << r.err;
  if (r.err.find("needs a build with the SEMat model") != std::string::npos) {
    EXPECT_EQ(r.code, 2);
  } else {
    EXPECT_EQ(r.code, 3);
    EXPECT_NE(r.err.find("'x.pth'"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(out_ + "/index.jsonl"));
  r = run(base() + " --out " + out_ + " --backend semat");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--backend semat needs --semat"), std::string::npos) << r.err;
  r = run(base() + " --out " + out_ + " --shard 2/2");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--shard"), std::string::npos) << r.err;
  r = run(base() + " --out " + out_ + " --overlap dice");
  EXPECT_EQ(r.code, 2);
  r = run("build-dataset --annotations " + (dir_ / "none.json").string() + " --images " + images_ +
          " --out " + out_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--annotations"), std::string::npos) << r.err;
  r = run("merge-index " + (dir_ / "images").string() + " --out " + out_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no index.jsonl"), std::string::npos) << r.err;
}

}  // namespace
