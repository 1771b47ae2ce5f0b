// A GoogleTest fixture for the CLI's end-to-end tests: a scratch folder per test suite and
// process (removed afterwards) and run(), which runs the semat executable (SEMAT_BINARY) in it.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "support/cli.h"

namespace semat::test {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("semat_" + std::string(info->test_suite_name()) + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  CliRun run(const std::string& args) const { return run_cli(SEMAT_BINARY, args, dir_); }

  std::filesystem::path dir_;
};

}  // namespace semat::test
