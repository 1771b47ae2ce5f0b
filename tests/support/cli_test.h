// A GoogleTest fixture for the CLI's end-to-end tests: a scratch folder per test suite and
// process (removed afterwards) and run(), which runs the semat executable (SEMAT_BINARY) in it.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
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

  /// `command_to_out` (a command line ending in "--out ") run with --precision fp32, then bf16 and
  /// auto under the test hook SEMAT_CPU_BF16=0 (a CPU without bf16 units), each into its own
  /// folder dir_/fp32, dir_/bf16, dir_/auto.
  struct PrecisionRuns {
    CliRun fp32, bf16, automatic;
  };
  PrecisionRuns run_precisions(const std::string& command_to_out) const {
    PrecisionRuns r;
    r.fp32 = run(command_to_out + (dir_ / "fp32").string() + " --precision fp32");
    setenv("SEMAT_CPU_BF16", "0", 1);
    r.bf16 = run(command_to_out + (dir_ / "bf16").string() + " --precision bf16");
    r.automatic = run(command_to_out + (dir_ / "auto").string() + " --precision auto");
    unsetenv("SEMAT_CPU_BF16");
    return r;
  }

  /// The bf16 run of run_precisions was refused in one line before `written` (a file in dir_/bf16)
  /// was written.
  void expect_bf16_refused(const CliRun& r, const std::string& written) const {
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("--precision bf16: this CPU has no native bfloat16"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir_ / "bf16" / written));
  }

  std::filesystem::path dir_;
};

}  // namespace semat::test
