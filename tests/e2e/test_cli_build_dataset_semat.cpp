// `semat build-dataset --backend semat` with the tiny random-weight SEMat fixture: the network
// produces every matte, recorded as backend "semat". (Random weights give arbitrary mattes, so
// --min-score 0 keeps them all; matte quality is covered by the SEMat fixture tests.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "coco_fixture.h"

namespace fs = std::filesystem;

namespace {

TEST(CliBuildDatasetSemat, EveryMatteComesFromTheNetwork) {
  const fs::path dir = fs::temp_directory_path() / ("semat_bd_semat_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "images");
  semat::test::write_fixture(semat::test::person_scenes(2), (dir / "images").string(),
                             (dir / "ann.json").string());
  const std::string semat_ckpt = std::string(SEMAT_TEST_DATA) + "/semat_tiny/semat_tiny.pth";
  const std::string cmd = std::string(SEMAT_BINARY) + " build-dataset --annotations " +
                          (dir / "ann.json").string() + " --images " + (dir / "images").string() +
                          " --out " + (dir / "out").string() + " --backend semat --semat " +
                          semat_ckpt + " --min-score 0 --progress off 2>" + (dir / "err").string() +
                          " >/dev/null";
  const int status = std::system(cmd.c_str());
  std::ifstream ef(dir / "err");
  std::stringstream err;
  err << ef.rdbuf();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << err.str();
  std::ifstream idx(dir / "out" / "index.jsonl");
  int n = 0;
  for (std::string line; std::getline(idx, line);) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["backend"], "semat");
    EXPECT_TRUE(fs::exists(dir / "out" / j["alpha"].get<std::string>()));
    ++n;
  }
  EXPECT_EQ(n, 2);
  fs::remove_all(dir);
}

TEST(CliBuildDatasetSemat, ASamCheckpointIsRefusedAsTheSematBackend) {
  const std::string sam_ckpt = std::string(SEMAT_TEST_DATA) + "/sam_tiny/sam_tiny.pth";
  const fs::path dir = fs::temp_directory_path() / ("semat_bd_semat2_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "images");
  semat::test::write_fixture(semat::test::person_scenes(1), (dir / "images").string(),
                             (dir / "ann.json").string());
  const std::string cmd = std::string(SEMAT_BINARY) + " build-dataset --annotations " +
                          (dir / "ann.json").string() + " --images " + (dir / "images").string() +
                          " --out " + (dir / "out").string() + " --backend semat --semat " +
                          sam_ckpt + " 2>/dev/null >/dev/null";
  const int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3);
  fs::remove_all(dir);
}

}  // namespace
