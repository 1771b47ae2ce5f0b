// The CLI's and the form fields' text parsers: --box X0,Y0,X1,Y1 and colours (#RRGGBB, #RGB,
// R,G,B, names).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "semat/core/error.h"
#include "semat/core/geometry.h"
#include "semat/matting/compose.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const semat::Box b = semat::parse_box(text);
    if (!(std::isfinite(b.x0) && std::isfinite(b.y1) && b.x1 > b.x0 && b.y1 > b.y0)) __builtin_trap();
  } catch (const semat::InvalidArgument&) {
  }
  if (auto c = semat::matting::parse_color(text))
    for (int i = 0; i < 3; ++i)
      if ((*c)[i] < 0 || (*c)[i] > 255) __builtin_trap();
  return 0;
}
