// The server's request parsing without sockets: the matting parameters of a JSON body
// (POST /v1/images/<id>/matte) and of multipart form fields (POST /v1/matte), as
// modules/serve/src/request_params.cpp reads them. The multipart framing itself is parsed by
// Debian's compiled cpp-httplib (not instrumented here).
//
// Input: byte 0 selects the mode (even: JSON body, odd: form fields) and Accept: image/png (bit
// 1); the rest is the JSON body, or the form's fields separated by 0xFF bytes in the order boxes,
// outputs, background (an empty field is an absent one).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "request_params.h"

namespace {

void check(const semat::serve::MatteParams& p, int max_boxes) {
  if (p.boxes.empty() || static_cast<int>(p.boxes.size()) > max_boxes || p.outputs.empty()) __builtin_trap();
  for (const semat::Box& b : p.boxes)
    if (!(b.x1 > b.x0 && b.y1 > b.y0)) __builtin_trap();
  if (p.png && p.outputs.size() != 1) __builtin_trap();
  for (int i = 0; i < 3; ++i)
    if (!(p.background[i] >= 0 && p.background[i] <= 255)) __builtin_trap();
  try {
    semat::serve::check_boxes_in_image(p.boxes, 640, 480);
  } catch (const semat::serve::HttpError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool form = data[0] & 1, png = data[0] & 2;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  constexpr int kMaxBoxes = 16;
  try {
    if (!form) {
      check(semat::serve::matte_params_from_json(rest, png, kMaxBoxes), kMaxBoxes);
    } else {
      std::vector<std::string> fields(3);
      std::size_t f = 0;
      for (char c : rest) {
        if (static_cast<unsigned char>(c) == 0xFF) {
          if (++f == fields.size()) break;
        } else {
          fields[f] += c;
        }
      }
      const char* names[] = {"boxes", "outputs", "background"};
      auto field = [&](const char* name) -> const std::string* {
        for (int i = 0; i < 3; ++i)
          if (std::string(name) == names[i]) return fields[i].empty() ? nullptr : &fields[i];
        return nullptr;
      };
      check(semat::serve::matte_params_from_form(field, png, kMaxBoxes), kMaxBoxes);
    }
  } catch (const semat::serve::HttpError& e) {
    if (e.status() != 400 && e.status() != 406) __builtin_trap();
  }
  return 0;
}
