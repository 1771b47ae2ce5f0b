// Box prompts. Coordinates are pixels of the original image, XYXY, with (0,0) the top-left corner
// of the top-left pixel: a box covering the whole W x H image is (0, 0, W, H).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/types.hpp>

namespace semat {

struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;

  double width() const { return x1 - x0; }
  double height() const { return y1 - y0; }
  /// Smallest pixel rectangle that covers the box (x0, y0 floored; x1, y1 ceiled).
  cv::Rect pixel_rect() const;
  std::string str() const;
};

/// Parses "X0,Y0,X1,Y1" (integers or decimals). `what` names the argument in errors, e.g. "--box 2".
/// Throws InvalidArgument for non-numeric text, a wrong count, or a zero-area or inverted box.
Box parse_box(const std::string& text, const std::string& what = "box");

/// Throws InvalidArgument naming `what` when the box is not inside a `width` x `height` image.
void check_box_in_image(const Box& box, int width, int height, const std::string& what = "box");

}  // namespace semat
