#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "semat/core/error.h"
#include "semat/matting/compose.h"

namespace semat::matting {

TEST(Compose, ParsesColours) {
  EXPECT_EQ(*parse_color("#ff8000"), cv::Scalar(0, 128, 255));
  EXPECT_EQ(*parse_color("#F80"), cv::Scalar(0, 136, 255));
  EXPECT_EQ(*parse_color("10,20,30"), cv::Scalar(30, 20, 10));
  EXPECT_EQ(*parse_color("White"), cv::Scalar(255, 255, 255));
  EXPECT_FALSE(parse_color("#12345"));
  EXPECT_FALSE(parse_color("10,20"));
  EXPECT_FALSE(parse_color("10,20,300"));
  EXPECT_FALSE(parse_color("photo.jpg"));
}

TEST(Compose, CompositeCutoutAndQuantisation) {
  cv::Mat fg(2, 2, CV_32FC3, cv::Scalar(1.0, 0.0, 0.0));
  cv::Mat alpha = (cv::Mat_<float>(2, 2) << 0.f, 1.f, 0.5f, 0.25f);
  Background bg;
  bg.bgr = cv::Scalar(0, 0, 200);
  const cv::Mat c = composite(fg, alpha, bg);
  EXPECT_EQ(c.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 200));
  EXPECT_EQ(c.at<cv::Vec3b>(0, 1), cv::Vec3b(255, 0, 0));
  EXPECT_EQ(c.at<cv::Vec3b>(1, 0), cv::Vec3b(128, 0, 100));
  const cv::Mat cut = cutout(fg, alpha);
  ASSERT_EQ(cut.type(), CV_8UC4);
  EXPECT_EQ(cut.at<cv::Vec4b>(1, 1), cv::Vec4b(255, 0, 0, 64));
  EXPECT_EQ(quantize_alpha(alpha, 16).at<std::uint16_t>(1, 0), 32768);
  EXPECT_EQ(quantize_alpha(alpha, 8).at<unsigned char>(1, 1), 64);
  EXPECT_THROW(quantize_alpha(alpha, 12), InvalidArgument);
}

TEST(Compose, BackgroundImageCoversTheOutput) {
  cv::Mat fg(10, 20, CV_32FC3, cv::Scalar(0, 0, 0));
  cv::Mat alpha(10, 20, CV_32F, cv::Scalar(0));
  Background bg;
  bg.image = cv::Mat(5, 5, CV_8UC3, cv::Scalar(10, 20, 30));
  const cv::Mat c = composite(fg, alpha, bg);
  EXPECT_EQ(c.size(), fg.size());
  EXPECT_EQ(c.at<cv::Vec3b>(9, 19), cv::Vec3b(10, 20, 30));
}

}  // namespace semat::matting
