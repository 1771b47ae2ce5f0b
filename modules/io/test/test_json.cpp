#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "semat/core/error.h"
#include "semat/io/json.h"

namespace semat::io {
namespace {

using nlohmann::json;

std::string deep(std::size_t n, char open = '[', char close = ']') {
  return std::string(n, open) + std::string(n, close);
}

TEST(Json, DescribeIsBoundedAndNeverRecurses) {
  EXPECT_EQ(describe_json(json(nullptr)), "null");
  EXPECT_EQ(describe_json(json(true)), "true");
  EXPECT_EQ(describe_json(json(-3)), "number -3");
  EXPECT_EQ(describe_json(json(2.5)), "number 2.5");
  EXPECT_EQ(describe_json(json::array({1, 2, 3})), "array of 3 elements");
  EXPECT_EQ(describe_json(json::object({{"a", 1}})), "object with 1 key");
  const std::string d = describe_json(json(std::string(5000, 'x') + "\xff"));
  EXPECT_LT(d.size(), 100u) << d;
  EXPECT_NE(d.find("(5001 bytes)"), std::string::npos) << d;
  EXPECT_EQ(describe_json(json(std::string("a\xff\"b"))), "string \"a\\xff\\x22b\" (4 bytes)");
}

TEST(Json, ParseRefusesDeepNestingHugeNumbersAndBadUtf8) {
  EXPECT_EQ(parse_json(deep(10), "x").dump(), deep(10));
  EXPECT_NO_THROW(parse_json(deep(kMaxJsonDepth), "x"));
  for (const std::string& text : {deep(kMaxJsonDepth + 1), deep(300000), std::string(300000, '['),
                                  "{\"a\":" + deep(300000) + "}"}) {
    try {
      parse_json(text, "the body");
      ADD_FAILURE() << "no DataError";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("the body"), std::string::npos) << e.what();
    }
  }
  // An over-deep document whose brackets never close: refused, not read to the end.
  EXPECT_THROW(parse_json("{\"a\":" + std::string(1000, '{'), "x"), DataError);
  EXPECT_THROW(parse_json("[1e400]", "x"), DataError);
  EXPECT_THROW(parse_json("[-1e400]", "x"), DataError);
  EXPECT_THROW(parse_json("\"\xff\"", "x"), DataError);
  EXPECT_THROW(parse_json("", "x"), DataError);
}

TEST(Json, IntegersAreRangeCheckedNotTruncated) {
  EXPECT_EQ(json_int(json(160), 0, INT32_MAX, "w"), 160);
  EXPECT_EQ(json_int(json(12.0), 0, INT32_MAX, "w"), 12);
  EXPECT_THROW(json_int(json((std::int64_t{1} << 32) + 160), 0, INT32_MAX, "w"), DataError);
  EXPECT_THROW(json_int(json(std::uint64_t{18446744073709551615u}), 0, INT64_MAX, "w"), DataError);
  EXPECT_THROW(json_int(json(-1), 0, 10, "w"), DataError);
  EXPECT_THROW(json_int(json(1.5), 0, 10, "w"), DataError);
  EXPECT_THROW(json_int(json(1e300), 0, INT64_MAX, "w"), DataError);
  EXPECT_THROW(json_int(json("7"), 0, 10, "w"), DataError);
  try {
    json_int(json(4294967456.0), 0, INT32_MAX, "\"width\"");
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("\"width\" must be an integer in [0, 2147483647]"), std::string::npos)
        << e.what();
  }
}

TEST(Json, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
  EXPECT_THROW(check_utf8("a\x80", "field"), DataError);
}

}  // namespace
}  // namespace semat::io
