// The bounded JSON front shared by the server, the safetensors header and COCO: parse_json must
// give a value (nested at most kMaxJsonDepth) or a semat::DataError, and describe_json must
// describe anything in a bounded line.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "semat/core/error.h"
#include "semat/io/json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)semat::io::is_valid_utf8(text);
  if (semat::io::printable_prefix(text).size() > 32 * 4 + 3) __builtin_trap();
  try {
    const nlohmann::json j = semat::io::parse_json(text, "fuzz");
    if (semat::io::describe_json(j).size() > 200) __builtin_trap();
    // What the server does with a parsed body: walk one level, describe, convert numbers.
    if (j.is_array() || j.is_object()) {
      for (const auto& v : j) {
        (void)semat::io::describe_json(v);
        try {
          (void)semat::io::json_int(v, -1000, 1 << 30, "v");
        } catch (const semat::DataError&) {
        }
      }
    }
    (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const semat::DataError&) {
  }
  return 0;
}
