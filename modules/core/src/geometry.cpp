#include "semat/core/geometry.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "semat/core/error.h"

namespace semat {

cv::Rect Box::pixel_rect() const {
  const int ix0 = static_cast<int>(std::floor(x0));
  const int iy0 = static_cast<int>(std::floor(y0));
  const int ix1 = static_cast<int>(std::ceil(x1));
  const int iy1 = static_cast<int>(std::ceil(y1));
  return {ix0, iy0, ix1 - ix0, iy1 - iy0};
}

std::string Box::str() const {
  std::ostringstream os;
  os << x0 << ',' << y0 << ',' << x1 << ',' << y1;
  return os.str();
}

Box parse_box(const std::string& text, const std::string& what) {
  double v[4];
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t comma = text.find(',', pos);
    const bool last = i == 3;
    SEMAT_CHECK(last == (comma == std::string::npos), InvalidArgument,
                what << " '" << text << "' must be four numbers X0,Y0,X1,Y1");
    const std::string field = text.substr(pos, last ? std::string::npos : comma - pos);
    // Plain decimal numbers only: strtod alone would also take hex ("0x8"), "infinity" and
    // leading spaces.
    const bool decimal = std::all_of(field.begin(), field.end(), [](char c) {
      return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E';
    });
    char* end = nullptr;
    errno = 0;
    v[i] = decimal ? std::strtod(field.c_str(), &end) : 0.0;
    SEMAT_CHECK(decimal && !field.empty() && end == field.c_str() + field.size() && errno == 0 &&
                    std::isfinite(v[i]),
                InvalidArgument,
                what << " '" << text << "': '" << field << "' is not a number (expected X0,Y0,X1,Y1)");
    pos = comma + 1;
  }
  Box b{v[0], v[1], v[2], v[3]};
  SEMAT_CHECK(b.x1 > b.x0 && b.y1 > b.y0, InvalidArgument,
              what << " '" << text << "' has zero area or is inverted: need X1 > X0 and Y1 > Y0");
  return b;
}

void check_box_in_image(const Box& b, int width, int height, const std::string& what) {
  SEMAT_CHECK(b.x0 >= 0 && b.y0 >= 0 && b.x1 <= width && b.y1 <= height, InvalidArgument,
              what << " (" << b.str() << ") is outside the " << width << "x" << height
                   << " image: coordinates must lie within 0.." << width << " x 0.." << height);
  const cv::Rect r = b.pixel_rect();
  SEMAT_CHECK(r.width >= 2 && r.height >= 2, InvalidArgument,
              what << " (" << b.str() << ") is smaller than 2x2 pixels: draw a larger box");
}

}  // namespace semat
