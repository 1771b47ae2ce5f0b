#include "semat/io/json.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "semat/core/error.h"

namespace semat::io {

using nlohmann::json;

std::string printable_prefix(std::string_view s, std::size_t max_bytes) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max_bytes; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max_bytes) out += "...";
  return out;
}

std::string describe_json(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer: return "number " + std::to_string(v.get<std::int64_t>());
    case json::value_t::number_unsigned: return "number " + std::to_string(v.get<std::uint64_t>());
    case json::value_t::number_float: {
      char buf[40];
      std::snprintf(buf, sizeof buf, "number %.9g", v.get<double>());
      return buf;
    }
    case json::value_t::string: {
      const std::string& s = v.get_ref<const std::string&>();
      return "string \"" + printable_prefix(s, 32) + "\" (" + std::to_string(s.size()) + " bytes)";
    }
    case json::value_t::array:
      return "array of " + std::to_string(v.size()) + (v.size() == 1 ? " element" : " elements");
    case json::value_t::object: return "object with " + std::to_string(v.size()) + (v.size() == 1 ? " key" : " keys");
    case json::value_t::binary: return "binary value";
    case json::value_t::discarded: break;
  }
  return "discarded value";
}

json parse_json(std::string_view text, const std::string& what, int max_depth) {
  // The DOM parser's callback sees every container start with its depth, before anything below
  // it is built, so an over-deep document is refused after reading max_depth brackets.
  const json::parser_callback_t limit = [max_depth, &what](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= max_depth)
      throw DataError(what + ": JSON nested deeper than " + std::to_string(max_depth) + " levels");
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), limit);
  } catch (const json::exception& e) {
    // parse_error (syntax, invalid UTF-8) and out_of_range 406 (a number such as 1e400).
    throw DataError(what + ": malformed JSON (" + e.what() + ")");
  }
}

std::int64_t json_int(const json& v, std::int64_t lo, std::int64_t hi, const std::string& what) {
  auto out_of_range = [&] {
    return DataError(what + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                     "], got " + describe_json(v));
  };
  if (v.is_number_unsigned()) {
    const std::uint64_t u = v.get<std::uint64_t>();
    if (hi < 0 || u > static_cast<std::uint64_t>(hi)) throw out_of_range();
    const auto s = static_cast<std::int64_t>(u);
    if (s < lo) throw out_of_range();
    return s;
  }
  if (v.is_number_integer()) {
    const std::int64_t s = v.get<std::int64_t>();
    if (s < lo || s > hi) throw out_of_range();
    return s;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    // Both bounds compared as doubles first, so the conversion below cannot overflow.
    if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi) ||
        d >= 9.2e18 || d <= -9.2e18)
      throw out_of_range();
    return static_cast<std::int64_t>(d);
  }
  throw out_of_range();
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    std::uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
    else return false;
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

void check_utf8(std::string_view text, const std::string& what) {
  if (!is_valid_utf8(text)) throw DataError(what + " is not valid UTF-8");
}

}  // namespace semat::io
