// `semat models` run as a person runs it, with SEMAT_MODELS pointing at folders made here: empty,
// missing, holding a truncated file and a file of the right size with the wrong content.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include "support/cli.h"

namespace fs = std::filesystem;

namespace {

using semat::test::CliRun;

constexpr std::uintmax_t kIsNetSize = 88188479;
constexpr const char* kIsNetSha = "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb";

class CliModels : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("semat_e2e_models_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
            "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "models");
    if (const char* old = std::getenv("SEMAT_MODELS")) old_ = old;
    ::setenv("SEMAT_MODELS", models().c_str(), 1);  // run_cli's child inherits it
  }
  void TearDown() override {
    if (old_) ::setenv("SEMAT_MODELS", old_->c_str(), 1);
    else ::unsetenv("SEMAT_MODELS");
    fs::remove_all(dir_);
  }

  std::string models() const { return (dir_ / "models").string(); }
  std::string model_file() const { return (dir_ / "models" / "isnet_medium_fp16.onnx").string(); }
  // A file of `size` zero bytes (sparse: cheap even at the model's 88 MB).
  void put_model(std::uintmax_t size) const {
    std::ofstream(model_file(), std::ios::binary).put('\0');
    fs::resize_file(model_file(), size);
  }

  CliRun run(const std::string& args) { return semat::test::run_cli(SEMAT_BINARY, args, dir_); }

  nlohmann::json isnet_row(const CliRun& r) {
    const nlohmann::json j = nlohmann::json::parse(r.out);
    for (const auto& m : j.at("models"))
      if (m.at("name") == "isnet-medium") return m;
    ADD_FAILURE() << "no isnet-medium in " << r.out;
    return {};
  }

  static int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

  fs::path dir_;
  std::optional<std::string> old_;
};

TEST_F(CliModels, EmptyFolderListsTheModelAsNotInstalled) {
  const CliRun r = run("models");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_NE(r.out.find("models folder: " + models() + " (from SEMAT_MODELS)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("isnet-medium: not installed (run 'make models')"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(model_file()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(kIsNetSha), std::string::npos) << r.out;

  const CliRun j = run("models --json");
  ASSERT_EQ(j.code, 0) << j.err;
  EXPECT_EQ(nlohmann::json::parse(j.out).at("models_dir"), models());
  EXPECT_EQ(nlohmann::json::parse(j.out).at("models_dir_from"), "SEMAT_MODELS");
  const nlohmann::json m = isnet_row(j);
  EXPECT_EQ(m.at("state"), "missing");
  EXPECT_EQ(m.at("installed"), false);
  EXPECT_TRUE(m.at("size").is_null());
  EXPECT_EQ(m.at("expected_size"), kIsNetSize);
  EXPECT_EQ(m.at("path"), model_file());
}

TEST_F(CliModels, MissingFolderIsNotInstalledNotAnError) {
  ::setenv("SEMAT_MODELS", (dir_ / "no" / "such").c_str(), 1);
  const CliRun r = run("models --verify --json");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(isnet_row(r).at("state"), "missing");
  EXPECT_FALSE(fs::exists(dir_ / "no")) << "listing must not create the folder";
}

TEST_F(CliModels, TruncatedFileIsOneErrorLineNamingFileAndFix) {
  put_model(1000);
  const CliRun r = run("models");
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(model_file()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1000 bytes, expected 88188479"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("make models"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("WRONG SIZE, 1000 bytes"), std::string::npos) << r.out;

  const CliRun j = run("models --json");
  EXPECT_EQ(j.code, 3);
  EXPECT_EQ(isnet_row(j).at("state"), "wrong-size");
  EXPECT_EQ(isnet_row(j).at("size"), 1000);
}

TEST_F(CliModels, WrongContentPassesTheSizeCheckAndFailsVerify) {
  put_model(kIsNetSize);
  const CliRun quick = run("models --json");
  EXPECT_EQ(quick.code, 0) << quick.err;
  EXPECT_EQ(isnet_row(quick).at("state"), "installed");
  EXPECT_TRUE(isnet_row(quick).at("sha256").is_null());

  const CliRun r = run("models --verify --json");
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(model_file()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::string("expected ") + kIsNetSha), std::string::npos) << r.err;
  const nlohmann::json m = isnet_row(r);
  EXPECT_EQ(m.at("state"), "wrong-hash");
  EXPECT_EQ(m.at("installed"), false);
  // sha256 of 88,188,479 zero bytes, as sha256sum computes it.
  EXPECT_EQ(m.at("sha256"), "6edaebd024bb0ece267a085f3695aa2c4aaff1d412acdf3f8ab6b4b9aee70141");
}

// The real model, when `make models` has installed it (make test runs make models first).
TEST(CliModelsInstalled, InstalledModelVerifies) {
  // Under ctest SEMAT_MODELS is an empty folder and SEMAT_TEST_MODELS the one `make models` filled.
  const char* test_models = std::getenv("SEMAT_TEST_MODELS");
  if (test_models && *test_models) ::setenv("SEMAT_MODELS", test_models, 1);
  const char* env = std::getenv("SEMAT_MODELS");
  const char* home = std::getenv("HOME");
  const fs::path dir = env && *env ? fs::path(env)
                       : std::getenv("XDG_DATA_HOME") && *std::getenv("XDG_DATA_HOME")
                           ? fs::path(std::getenv("XDG_DATA_HOME")) / "semat" / "models"
                           : fs::path(home ? home : "/") / ".local/share/semat/models";
  if (!fs::exists(dir / "isnet_medium_fp16.onnx"))
    GTEST_SKIP() << "IS-Net not installed in " << dir << " (make models)";
  const fs::path scratch = fs::temp_directory_path() / ("semat_e2e_models_real_" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  const CliRun r = semat::test::run_cli(SEMAT_BINARY, "models --verify --json", scratch);
  fs::remove_all(scratch);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  bool seen = false;
  for (const auto& m : j.at("models")) {
    if (m.at("name") != "isnet-medium") continue;
    seen = true;
    EXPECT_EQ(m.at("state"), "verified");
    EXPECT_EQ(m.at("sha256"), kIsNetSha);
    EXPECT_EQ(m.at("size"), kIsNetSize);
  }
  EXPECT_TRUE(seen) << r.out;
}

}  // namespace
