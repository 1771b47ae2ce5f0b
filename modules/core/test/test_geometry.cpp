#include <gtest/gtest.h>

#include "semat/core/error.h"
#include "semat/core/geometry.h"

namespace semat {

TEST(Geometry, ParsesIntegerAndDecimalBoxes) {
  const Box b = parse_box("10,20,110,220");
  EXPECT_DOUBLE_EQ(b.x0, 10);
  EXPECT_DOUBLE_EQ(b.y1, 220);
  const Box d = parse_box("1.5,2.25,30.75,40");
  EXPECT_DOUBLE_EQ(d.y0, 2.25);
  EXPECT_EQ(d.pixel_rect(), cv::Rect(1, 2, 30, 38));
}

TEST(Geometry, RejectsMalformedBoxes) {
  EXPECT_THROW(parse_box("10,20,abc,40"), InvalidArgument);
  EXPECT_THROW(parse_box("10,20,30"), InvalidArgument);
  EXPECT_THROW(parse_box("10,20,30,40,50"), InvalidArgument);
  EXPECT_THROW(parse_box(""), InvalidArgument);
  EXPECT_THROW(parse_box("10,,30,40"), InvalidArgument);
  EXPECT_THROW(parse_box("nan,1,2,3"), InvalidArgument);
  // Issue #14: hex, infinities and padded fields used to be accepted by strtod.
  EXPECT_THROW(parse_box("0x8,0,20,20"), InvalidArgument);
  EXPECT_THROW(parse_box("0,0,infinity,20"), InvalidArgument);
  EXPECT_THROW(parse_box(" 1,0,20,20"), InvalidArgument);
  EXPECT_THROW(parse_box("1e999,0,20,20"), InvalidArgument);
  EXPECT_NO_THROW(parse_box("-1.5e1,0,2E1,+20"));
  EXPECT_THROW(parse_box("10,20,10,40"), InvalidArgument);  // zero width
  EXPECT_THROW(parse_box("50,20,10,40"), InvalidArgument);  // inverted
}

TEST(Geometry, ErrorNamesTheArgument) {
  try {
    parse_box("1,2,x,4", "--box 3");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("--box 3"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos);
  }
}

TEST(Geometry, BoxMustLieInsideTheImage) {
  EXPECT_NO_THROW(check_box_in_image(parse_box("0,0,100,50"), 100, 50));
  EXPECT_THROW(check_box_in_image(parse_box("0,0,101,50"), 100, 50), InvalidArgument);
  EXPECT_THROW(check_box_in_image(parse_box("-1,0,10,10"), 100, 50), InvalidArgument);
  EXPECT_THROW(check_box_in_image(parse_box("200,200,300,300"), 100, 50), InvalidArgument);
  EXPECT_THROW(check_box_in_image(parse_box("10,10,10.5,20"), 100, 50), InvalidArgument);
}

}  // namespace semat
