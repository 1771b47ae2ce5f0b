#include <gtest/gtest.h>

#include <vector>

#include "semat/core/error.h"
#include "semat/core/log.h"

namespace semat {

TEST(Log, SinkReceivesMessagesAtOrAboveTheLevel) {
  std::vector<std::string> lines;
  log::set_sink([&](log::Level, const std::string& tag, const std::string& msg) {
    lines.push_back(tag + "|" + msg);
  });
  const log::Level old = log::level();
  log::set_level(log::Level::kWarn);
  SEMAT_LOG_INFO("t", "dropped " << 1);
  SEMAT_LOG_WARN("t", "kept " << 2);
  log::set_level(old);
  log::set_sink({});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "t|kept 2");
}

TEST(Log, ParsesLevelNames) {
  EXPECT_EQ(log::parse_level("debug"), log::Level::kDebug);
  EXPECT_EQ(log::parse_level("off"), log::Level::kOff);
  EXPECT_THROW(log::parse_level("loud"), ConfigError);
}

TEST(Errors, ExitCodesFollowTheErrorKind) {
  EXPECT_EQ(exit_code_for(ConfigError("x")), 2);
  EXPECT_EQ(exit_code_for(InvalidArgument("x")), 2);
  EXPECT_EQ(exit_code_for(IoError("x")), 3);
  EXPECT_EQ(exit_code_for(DataError("x")), 3);
  EXPECT_EQ(exit_code_for(Error("x")), 1);
  EXPECT_EQ(exit_code_for(std::runtime_error("x")), 1);
}

}  // namespace semat
