// Bounded JSON handling for untrusted input (request bodies, checkpoint headers, COCO files).
//
// nlohmann's parser is iterative, but dump(), copies, comparisons and conversions recurse on the
// value, so a value nested a few hundred thousand levels deep overflows the stack wherever it is
// touched afterwards. Every untrusted document is therefore parsed with a nesting limit, and error
// messages describe offending values with describe_json() (type and a short prefix, never a dump).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace semat::io {

/// Deepest nesting of arrays/objects accepted in untrusted JSON. Real documents (COCO, safetensors
/// headers, API bodies) stay below 8; 64 leaves room and keeps recursion on values cheap.
constexpr int kMaxJsonDepth = 64;

/// One line of at most ~100 characters describing `v` for an error message: its type and, for
/// scalars, a prefix of its value ("string \"abc...\" (1234 bytes)", "number 12.5",
/// "array of 3 elements", "object with 2 keys"). Constant stack, bounded time; never throws on
/// invalid UTF-8.
std::string describe_json(const nlohmann::json& v);

/// At most `max_bytes` of untrusted text for an error message: printable ASCII as is, other
/// bytes (and quotes, backslashes) as \xNN, "..." when cut. Always valid UTF-8.
std::string printable_prefix(std::string_view text, std::size_t max_bytes = 32);

/// Parses untrusted `text`. Throws semat::DataError "<what>: ..." for malformed JSON, invalid
/// UTF-8, numbers outside the double range (1e400) and nesting deeper than `max_depth`.
nlohmann::json parse_json(std::string_view text, const std::string& what, int max_depth = kMaxJsonDepth);

/// `v` as an integer in [lo, hi] (integral floats such as 12.0 are accepted, as some exporters
/// write them). Throws semat::DataError "<what> ..." for anything else: never truncates.
std::int64_t json_int(const nlohmann::json& v, std::int64_t lo, std::int64_t hi, const std::string& what);

/// Throws semat::DataError when `text` is not valid UTF-8 (overlong forms and surrogates are
/// invalid). For untrusted strings that will be put into JSON answers or logs.
void check_utf8(std::string_view text, const std::string& what);
bool is_valid_utf8(std::string_view text);

}  // namespace semat::io
