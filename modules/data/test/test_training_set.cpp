// TrainingSet and Prefetcher on small datasets made here in a temporary folder: every dataset
// type, where the augmentation puts known patterns, trimap/alpha consistency, boxes,
// determinism, weighted sampling, every scan-time and read-time error, and the prefetcher's
// order, error propagation and shutdown.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <stdexcept>
#include <thread>

#include "semat/core/error.h"
#include "semat/data/index.h"
#include "semat/data/training_set.h"

namespace fs = std::filesystem;
using semat::data::AugmentConfig;
using semat::data::DatasetSpec;
using semat::data::Prefetcher;
using semat::data::TrainingSample;
using semat::data::TrainingSet;

namespace {

void write_image(const fs::path& p, const cv::Mat& m) {
  fs::create_directories(p.parent_path());
  if (!cv::imwrite(p.string(), m)) throw std::runtime_error("cannot write " + p.string());
}

// B = x, G = y, R = 50: every pixel of a <= 256 x 256 image tells where it came from.
cv::Mat pattern_bgr(int w, int h) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x), uchar(y), 50);
  return m;
}

// Opaque rectangle plus a half-transparent column on its right: asymmetric on purpose.
cv::Mat rect_alpha(int w, int h, cv::Rect r) {
  cv::Mat a = cv::Mat::zeros(h, w, CV_8U);
  a(r).setTo(255);
  a(cv::Rect(r.x + r.width, r.y, 1, r.height)).setTo(128);
  return a;
}

cv::Mat rect_trimap(int w, int h, cv::Rect r) {
  cv::Mat t = cv::Mat::zeros(h, w, CV_8U);
  t(cv::Rect(r.x - 2, r.y - 2, r.width + 5, r.height + 4)).setTo(128);
  t(cv::Rect(r.x + 2, r.y + 2, r.width - 4, r.height - 4)).setTo(255);
  return t;
}

cv::Mat gray3(const cv::Mat& g) {
  cv::Mat c;
  cv::cvtColor(g, c, cv::COLOR_GRAY2BGR);
  return c;
}

// What the sample should hold for an unaugmented w x h source padded to S x S.
cv::Mat padded(const cv::Mat& m, int S) {
  cv::Mat out = cv::Mat::zeros(S, S, m.type());
  m.copyTo(out(cv::Rect(0, 0, m.cols, m.rows)));
  return out;
}

cv::Mat to_rgb(const cv::Mat& bgr) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

cv::Mat unit(const cv::Mat& m8) {
  cv::Mat f;
  m8.convertTo(f, CV_32F, 1.0 / 255);
  return f;
}

cv::Mat trimap_float(const cv::Mat& t8) {
  cv::Mat f(t8.size(), CV_32F);
  for (int y = 0; y < t8.rows; ++y)
    for (int x = 0; x < t8.cols; ++x) {
      const int v = t8.at<uchar>(y, x);
      f.at<float>(y, x) = v < 85 ? 0.f : (v >= 170 ? 1.f : 0.5f);
    }
  return f;
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

bool same_bytes(const TrainingSample& a, const TrainingSample& b) {
  return same(a.image, b.image) && same(a.alpha, b.alpha) && same(a.trimap, b.trimap) &&
         std::equal(a.box, a.box + 4, b.box) && a.source == b.source;
}

// Types, sizes, ranges, trimap levels and box validity of any sample.
void check_sample(const TrainingSample& s, int S) {
  ASSERT_EQ(s.image.type(), CV_8UC3);
  ASSERT_EQ(s.alpha.type(), CV_32F);
  ASSERT_EQ(s.trimap.type(), CV_32F);
  ASSERT_EQ(s.image.size(), cv::Size(S, S));
  ASSERT_EQ(s.alpha.size(), cv::Size(S, S));
  ASSERT_EQ(s.trimap.size(), cv::Size(S, S));
  double lo, hi;
  cv::minMaxLoc(s.alpha, &lo, &hi);
  EXPECT_GE(lo, 0.0);
  EXPECT_LE(hi, 1.0);
  const int other = cv::countNonZero((s.trimap != 0.f) & (s.trimap != 0.5f) & (s.trimap != 1.f));
  EXPECT_EQ(other, 0) << "trimap values other than 0, 0.5, 1 in " << s.source;
  EXPECT_GE(s.box[0], 0);
  EXPECT_GE(s.box[1], 0);
  EXPECT_LE(s.box[2], S);
  EXPECT_LE(s.box[3], S);
  EXPECT_GT(s.box[2], s.box[0]);
  EXPECT_GT(s.box[3], s.box[1]);
  EXPECT_FALSE(s.source.empty());
}

cv::Rect alpha_bbox(const TrainingSample& s) {
  cv::Mat nz = s.alpha > 0.f;
  return cv::boundingRect(nz);
}

AugmentConfig quiet(int size) {
  AugmentConfig a;
  a.size = size;
  a.scale_min = a.scale_max = 1.0;
  a.flip = false;
  a.color_jitter = false;
  a.box_jitter = 0;
  a.two_fg_prob = 0;
  a.square_resize_prob = 0;
  return a;
}

template <class E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG TYPE: ") + e.what();
  }
  return "NO ERROR";
}

class TrainingSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("semat_trainset_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
            "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A build-dataset folder: images/img_i.png (w x h pattern), out/{alpha,trimap}/i_(100+i).png
  // (the rectangle matte) and out/<index_name> with one record per image.
  DatasetSpec coco(int n, int w, int h, cv::Rect r, const std::vector<double>& scores = {},
                   const std::string& index_name = "index.jsonl") {
    const fs::path out = dir_ / "out", images = dir_ / "images";
    fs::create_directories(out);
    std::ofstream idx(out / index_name, std::ios::app);
    for (int i = 0; i < n; ++i) {
      semat::data::IndexRecord rec;
      rec.image_id = i;
      rec.ann_id = 100 + i;
      rec.image = "sub/img_" + std::to_string(i) + ".png";
      rec.width = w;
      rec.height = h;
      rec.box = {double(r.x), double(r.y), double(r.br().x), double(r.br().y)};
      rec.score = scores.empty() ? 99 : scores[i];
      rec.backend = "closed-form";
      rec.omega = 3;
      rec.area = r.area();
      const std::string stem = semat::data::instance_stem(rec.image_id, rec.ann_id);
      rec.alpha = "alpha/" + stem + ".png";
      rec.trimap = "trimap/" + stem + ".png";
      write_image(images / rec.image, pattern_bgr(w, h));
      write_image(out / rec.alpha, rect_alpha(w, h, r));
      write_image(out / rec.trimap, rect_trimap(w, h, r));
      idx << rec.to_json().dump() << "\n";
    }
    DatasetSpec s;
    s.type = "coco-matting";
    s.name = "coco";
    s.root = out.string();
    s.images = images.string();
    return s;
  }

  // A concatenated file in `folder` with n panels of w x h: image | alpha | trimap for n = 3,
  // image | filler... | trimap | alpha otherwise.
  fs::path concat_file(const fs::path& folder, const std::string& stem, int n, int w, int h, cv::Rect r) {
    const cv::Mat img = pattern_bgr(w, h), a = gray3(rect_alpha(w, h, r)), t = gray3(rect_trimap(w, h, r));
    const cv::Mat filler(h, w, CV_8UC3, cv::Scalar::all(77));
    std::vector<cv::Mat> panels{img};
    if (n == 3) {
      panels.push_back(a);
      panels.push_back(t);
    } else {
      for (int i = 0; i < n - 3; ++i) panels.push_back(filler);
      panels.push_back(t);
      panels.push_back(a);
    }
    cv::Mat all;
    cv::hconcat(panels, all);
    const fs::path p = folder / (stem + ".png");
    write_image(p, all);
    return p;
  }

  // Foregrounds a (120x90), b (100x100), c (40x30: smaller than the crop) of one colour with a
  // soft disc of alpha; backgrounds of one colour in a nested folder.
  DatasetSpec composition() {
    const fs::path fg = dir_ / "fg", al = dir_ / "alpha", bg = dir_ / "bg";
    const std::vector<std::tuple<std::string, int, int, std::string>> fgs = {
        {"a", 120, 90, ".png"}, {"b", 100, 100, ".jpg"}, {"c", 40, 30, ".png"}};
    for (const auto& [stem, w, h, ext] : fgs) {
      write_image(fg / (stem + ".png"), cv::Mat(h, w, CV_8UC3, kFg));
      cv::Mat a = cv::Mat::zeros(h, w, CV_8U);
      cv::circle(a, {w / 2, h / 2}, std::min(w, h) / 3, 255, cv::FILLED);
      cv::GaussianBlur(a, a, {0, 0}, 2.0);
      write_image(al / (stem + ext), a);
    }
    write_image(bg / "sub" / "bg1.png", cv::Mat(60, 80, CV_8UC3, kBg));
    write_image(bg / "bg2.png", cv::Mat(300, 200, CV_8UC3, kBg));
    DatasetSpec s;
    s.type = "composition";
    s.name = "comp";
    s.fg = fg.string();
    s.alpha = al.string();
    s.bg = bg.string();
    return s;
  }

  const cv::Scalar kFg{200, 30, 60}, kBg{20, 220, 90};
  fs::path dir_;
};

// ---------------------------------------------------------------------------------------------
// coco-matting

TEST_F(TrainingSetTest, CocoMattingShapesRangesAndLanding) {
  const cv::Rect r(20, 30, 40, 40);
  TrainingSet ts({coco(3, 160, 100, r)}, quiet(160), 7);
  ASSERT_EQ(ts.dataset_count(), 1u);
  EXPECT_EQ(ts.dataset_size(0), 3u);
  for (int64_t k = 0; k < 6; ++k) {
    const TrainingSample s = ts.get(k);
    check_sample(s, 160);
    // Scale 1 of a 160 px wide image at size 160: no resize, no crop, padding below.
    EXPECT_TRUE(same(s.image, padded(to_rgb(pattern_bgr(160, 100)), 160)));
    EXPECT_TRUE(same(s.alpha, padded(unit(rect_alpha(160, 100, r)), 160)));
    EXPECT_TRUE(same(s.trimap, padded(trimap_float(rect_trimap(160, 100, r)), 160)));
    EXPECT_EQ(s.box[0], 20);
    EXPECT_EQ(s.box[1], 30);
    EXPECT_EQ(s.box[2], 61);  // the soft column right of the rectangle
    EXPECT_EQ(s.box[3], 70);
    const auto i = static_cast<int64_t>(ts.pick(k).second);  // items in (image id, ann id) order
    EXPECT_EQ(s.source, "coco:" + semat::data::instance_stem(i, 100 + i));
  }
}

TEST_F(TrainingSetTest, CocoMattingFlipMirrorsEveryPanel) {
  const cv::Rect r(20, 30, 40, 40);
  AugmentConfig a = quiet(160);
  a.flip = true;
  TrainingSet ts({coco(1, 160, 100, r)}, a, 7);
  cv::Mat img = padded(to_rgb(pattern_bgr(160, 100)), 160), al = padded(unit(rect_alpha(160, 100, r)), 160);
  cv::Mat tri = padded(trimap_float(rect_trimap(160, 100, r)), 160);
  cv::Mat img_f, al_f, tri_f;
  cv::flip(to_rgb(pattern_bgr(160, 100)), img_f, 1);
  cv::flip(rect_alpha(160, 100, r), al_f, 1);
  cv::flip(rect_trimap(160, 100, r), tri_f, 1);
  int flipped = 0, plain = 0;
  for (int64_t k = 0; k < 40; ++k) {
    const TrainingSample s = ts.get(k);
    if (same(s.image, img)) {
      ++plain;
      EXPECT_TRUE(same(s.alpha, al) && same(s.trimap, tri));
    } else {
      ASSERT_TRUE(same(s.image, padded(img_f, 160))) << "neither the image nor its mirror";
      EXPECT_TRUE(same(s.alpha, padded(unit(al_f), 160)));
      EXPECT_TRUE(same(s.trimap, padded(trimap_float(tri_f), 160)));
      EXPECT_EQ(s.box[0], 160 - 61);
      EXPECT_EQ(s.box[2], 160 - 20);
      ++flipped;
    }
  }
  EXPECT_GT(flipped, 5);
  EXPECT_GT(plain, 5);
}

TEST_F(TrainingSetTest, CocoMattingResizeAndCropKeepPanelsAligned) {
  // Image and alpha carry the same 16 px checkerboard; a tiny subject elsewhere would be missed
  // by most random crops at scale 3.
  const int w = 64, h = 48;
  cv::Mat board(h, w, CV_8U);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) board.at<uchar>(y, x) = ((x / 16 + y / 16) % 2) ? 230 : 0;
  write_image(dir_ / "images" / "board.png", gray3(board));
  write_image(dir_ / "out" / "alpha" / "1_2.png", board);
  write_image(dir_ / "out" / "trimap" / "1_2.png", board);
  semat::data::IndexRecord rec;
  rec.image_id = 1, rec.ann_id = 2, rec.image = "board.png", rec.width = w, rec.height = h;
  rec.score = 99, rec.backend = "closed-form", rec.alpha = "alpha/1_2.png", rec.trimap = "trimap/1_2.png";
  cv::Mat dot = cv::Mat::zeros(h, w, CV_8U);
  dot(cv::Rect(5, 5, 3, 3)).setTo(255);
  write_image(dir_ / "out" / "alpha" / "3_4.png", dot);
  write_image(dir_ / "out" / "trimap" / "3_4.png", dot);
  semat::data::IndexRecord rec2 = rec;
  rec2.image_id = 3, rec2.ann_id = 4, rec2.alpha = "alpha/3_4.png", rec2.trimap = "trimap/3_4.png";
  std::ofstream(dir_ / "out" / "index.jsonl") << rec.to_json().dump() << "\n" << rec2.to_json().dump() << "\n";
  DatasetSpec s;
  s.type = "coco-matting", s.root = (dir_ / "out").string(), s.images = (dir_ / "images").string();
  AugmentConfig a = quiet(64);
  a.scale_min = 2.5, a.scale_max = 3.5, a.flip = true;
  TrainingSet ts({s}, a, 3);
  int checked = 0;
  for (int64_t k = 0; k < 40; ++k) {
    const TrainingSample smp = ts.get(k);
    check_sample(smp, 64);
    EXPECT_GT(cv::countNonZero(smp.alpha > 0.f), 0) << "the crop lost the subject at index " << k;
    if (smp.source != "coco-matting:1_2") continue;
    // Where image and alpha are both flat (3x3), they must show the same square (the kernels'
    // ringing differs per panel, so only a 0-vs-230 disagreement is a misalignment).
    cv::Mat img8;
    cv::extractChannel(smp.image, img8, 0);
    cv::Mat a8;
    smp.alpha.convertTo(a8, CV_8U, 255);
    cv::Mat k3 = cv::Mat::ones(3, 3, CV_8U), imin, imax, amin, amax;
    cv::erode(img8, imin, k3), cv::dilate(img8, imax, k3), cv::erode(a8, amin, k3), cv::dilate(a8, amax, k3);
    const cv::Mat flat = (imin == imax) & (amin == amax);
    cv::Mat diff;
    cv::absdiff(img8, a8, diff);
    EXPECT_EQ(cv::countNonZero((diff > 100) & flat), 0) << "image and alpha panels are misaligned at " << k;
    EXPECT_GT(cv::countNonZero(flat), 64 * 64 / 16);
    ++checked;
  }
  EXPECT_GT(checked, 5);
}

TEST_F(TrainingSetTest, CocoMattingReadsEveryIndexLastLineWinsAndFiltersScore) {
  const cv::Rect r(10, 10, 20, 20);
  coco(3, 64, 48, r, {99, 50, 99}, "index-0-of-2.jsonl");
  DatasetSpec s = coco(2, 64, 48, r, {99, 99}, "index-1-of-2.jsonl");  // ids 0, 1 again: 1 is now 99
  s.min_score = 95;
  TrainingSet ts({s}, quiet(64), 1);
  EXPECT_EQ(ts.dataset_size(0), 3u);
  s.min_score = 99.5;
  EXPECT_NE(error_of<semat::DataError>([&] { TrainingSet t({s}, quiet(64), 1); }).find("min_score"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// coco-matting-concat

TEST_F(TrainingSetTest, ConcatPanelRuleFromPath) {
  const cv::Rect r(10, 8, 30, 30);
  const int w = 64, h = 48;
  const std::vector<std::pair<std::string, int>> folders = {
      {"x_06-14_y", 4}, {"ori_mask", 3}, {"SEMat_concat", 3}, {"plain", 5}};
  for (const auto& [folder, n] : folders) {
    concat_file(dir_ / folder / "deeper", "f_" + std::to_string(n), n, w, h, r);
    DatasetSpec s;
    s.type = "coco-matting-concat";
    s.root = (dir_ / folder).string();
    TrainingSet ts({s}, quiet(64), 5);
    ASSERT_EQ(ts.dataset_size(0), 1u);
    const TrainingSample smp = ts.get(0);
    check_sample(smp, 64);
    EXPECT_TRUE(same(smp.image, padded(to_rgb(pattern_bgr(w, h)), 64))) << folder;
    EXPECT_TRUE(same(smp.alpha, padded(unit(rect_alpha(w, h, r)), 64))) << folder;
    EXPECT_TRUE(same(smp.trimap, padded(trimap_float(rect_trimap(w, h, r)), 64))) << folder;
    EXPECT_EQ(smp.source, "coco-matting-concat:f_" + std::to_string(n));
  }
}

TEST_F(TrainingSetTest, ConcatPanelsGivenOverrideThePath) {
  const cv::Rect r(10, 8, 30, 30);
  concat_file(dir_ / "SEMat_concat", "five", 5, 64, 48, r);  // the path says 3
  DatasetSpec s;
  s.type = "coco-matting-concat", s.root = (dir_ / "SEMat_concat").string(), s.panels = 5;
  TrainingSet ts({s}, quiet(64), 5);
  const TrainingSample smp = ts.get(0);
  EXPECT_TRUE(same(smp.alpha, padded(unit(rect_alpha(64, 48, r)), 64)));
  EXPECT_TRUE(same(smp.trimap, padded(trimap_float(rect_trimap(64, 48, r)), 64)));
  s.panels = 2;
  EXPECT_NE(error_of<semat::ConfigError>([&] { TrainingSet t({s}, quiet(64), 1); }).find("panels"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// composition

TEST_F(TrainingSetTest, CompositionTrimapMatchesAlphaAndImageIsTheComposite) {
  AugmentConfig a = quiet(64);
  a.flip = true;
  TrainingSet ts({composition()}, a, 11);
  EXPECT_EQ(ts.dataset_size(0), 3u);
  int with_unknown = 0;
  for (int64_t k = 0; k < 30; ++k) {
    const TrainingSample s = ts.get(k);
    check_sample(s, 64);
    const cv::Mat fg = s.trimap == 1.f, bg = s.trimap == 0.f, unk = s.trimap == 0.5f;
    EXPECT_EQ(cv::countNonZero(fg & (s.alpha < 0.99f)), 0) << "trimap fg where alpha < 0.99 at " << k;
    EXPECT_EQ(cv::countNonZero(bg & (s.alpha > 0.01f)), 0) << "trimap bg where alpha > 0.01 at " << k;
    if (cv::countNonZero(unk) > 0) ++with_unknown;
    // Colour jitter off: opaque pixels show the foreground colour, transparent ones the
    // background (both RGB now).
    const cv::Vec3b want_fg(60, 30, 200), want_bg(90, 220, 20);
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x) {
        const float al = s.alpha.at<float>(y, x);
        const cv::Vec3b p = s.image.at<cv::Vec3b>(y, x);
        if (al == 1.f) {
          EXPECT_LE(cv::norm(cv::Vec3i(p) - cv::Vec3i(want_fg), cv::NORM_INF), 1) << k;
        } else if (al == 0.f) {
          EXPECT_LE(cv::norm(cv::Vec3i(p) - cv::Vec3i(want_bg), cv::NORM_INF), 1) << k;
        }
      }
    const std::string stem = s.source.substr(s.source.find(':') + 1);
    EXPECT_TRUE(stem == "a" || stem == "b" || stem == "c") << s.source;
  }
  EXPECT_GE(with_unknown, 25) << "crops should centre near unknown pixels";
}

TEST_F(TrainingSetTest, CompositionWithTwoForegroundsAndJitter) {
  AugmentConfig a;
  a.size = 96;
  a.two_fg_prob = 1.0;
  a.square_resize_prob = 0.5;  // the official square resize on about half of them
  a.square_side = 128;
  a.trimap_min_kernel = 5, a.trimap_max_kernel = 40;
  TrainingSet ts({composition()}, a, 12);
  for (int64_t k = 0; k < 15; ++k) {
    const TrainingSample s = ts.get(k);
    check_sample(s, 96);
    EXPECT_EQ(cv::countNonZero((s.trimap == 1.f) & (s.alpha < 0.99f)), 0);
    EXPECT_EQ(cv::countNonZero((s.trimap == 0.f) & (s.alpha > 0.01f)), 0);
    const cv::Rect b = alpha_bbox(s);
    if (b.area() == 0) continue;
    // Jittered box: within the GenBBox range of the tight box.
    const double fx = std::ceil(0.1 * b.width), fy = std::ceil(0.1 * b.height);
    EXPECT_LE(std::abs(s.box[0] - b.x), fx + 1);
    EXPECT_LE(std::abs(s.box[1] - b.y), fy + 1);
    EXPECT_LE(std::abs(s.box[2] - b.br().x), fx + 1);
    EXPECT_LE(std::abs(s.box[3] - b.br().y), fy + 1);
  }
}

// ---------------------------------------------------------------------------------------------
// boxes, determinism, sampling

TEST_F(TrainingSetTest, BoxIsTheTightAlphaBoxWithoutJitter) {
  const cv::Rect r(12, 9, 25, 20);
  DatasetSpec c = coco(2, 64, 48, r);
  concat_file(dir_ / "cc", "one", 3, 64, 48, r);
  DatasetSpec cc;
  cc.type = "coco-matting-concat", cc.root = (dir_ / "cc").string(), cc.panels = 3;
  AugmentConfig a;
  a.size = 64;
  a.box_jitter = 0;
  TrainingSet ts({c, cc, composition()}, a, 99);
  std::set<size_t> seen;
  for (int64_t k = 0; k < 60; ++k) {
    const TrainingSample s = ts.get(k);
    check_sample(s, 64);
    seen.insert(ts.pick(k).first);
    const cv::Rect b = alpha_bbox(s);
    if (b.area() == 0) continue;
    EXPECT_EQ(s.box[0], b.x) << s.source;
    EXPECT_EQ(s.box[1], b.y) << s.source;
    EXPECT_EQ(s.box[2], b.br().x) << s.source;
    EXPECT_EQ(s.box[3], b.br().y) << s.source;
  }
  EXPECT_EQ(seen.size(), 3u);
}

TEST_F(TrainingSetTest, DeterministicAcrossCallsThreadsAndSeeds) {
  const cv::Rect r(12, 9, 25, 20);
  AugmentConfig a;
  a.size = 80;
  a.scale_min = 0.5, a.scale_max = 2.0;
  const std::vector<DatasetSpec> specs = {coco(3, 64, 48, r), composition()};
  TrainingSet ts(specs, a, 1234);
  TrainingSet again(specs, a, 1234);
  TrainingSet other(specs, a, 4321);
  std::vector<TrainingSample> main_thread(12), t1(12), t2(12);
  for (int64_t k = 0; k < 12; ++k) main_thread[k] = ts.get(k);
  std::thread th1([&] {
    for (int64_t k = 11; k >= 0; --k) t1[k] = ts.get(k);
  });
  std::thread th2([&] {
    for (int64_t k = 0; k < 12; ++k) t2[k] = again.get(k);
  });
  th1.join();
  th2.join();
  int differ = 0;
  for (int64_t k = 0; k < 12; ++k) {
    EXPECT_TRUE(same_bytes(main_thread[k], ts.get(k))) << k;
    EXPECT_TRUE(same_bytes(main_thread[k], t1[k])) << k;
    EXPECT_TRUE(same_bytes(main_thread[k], t2[k])) << k;
    if (!same_bytes(main_thread[k], other.get(k))) ++differ;
  }
  EXPECT_GE(differ, 10);
}

TEST_F(TrainingSetTest, WeightsDecideTheDatasetWhateverItsSize) {
  DatasetSpec big = coco(6, 32, 32, cv::Rect(4, 4, 10, 10));
  big.weight = 3;
  concat_file(dir_ / "small", "s", 3, 32, 32, cv::Rect(4, 4, 10, 10));
  DatasetSpec small;
  small.type = "coco-matting-concat", small.name = "small", small.root = (dir_ / "small").string(), small.weight = 1;
  small.panels = 3;
  TrainingSet ts({small, big}, quiet(32), 5);
  int big_hits = 0;
  std::set<size_t> items;
  for (int64_t k = 0; k < 4000; ++k) {
    const auto [d, i] = ts.pick(k);
    ASSERT_LT(i, ts.dataset_size(d));
    if (d == 1) ++big_hits, items.insert(i);
  }
  EXPECT_NEAR(big_hits / 4000.0, 0.75, 0.03);
  EXPECT_EQ(items.size(), 6u);
  for (int64_t k = 0; k < 10; ++k)
    EXPECT_EQ(ts.get(k).source.rfind(ts.pick(k).first == 1 ? "coco:" : "small:", 0), 0u) << k;
  // A zero weight is never drawn.
  small.weight = 0;
  TrainingSet only_big({small, big}, quiet(32), 5);
  for (int64_t k = 0; k < 200; ++k) EXPECT_EQ(only_big.pick(k).first, 1u);
}

// ---------------------------------------------------------------------------------------------
// errors

TEST_F(TrainingSetTest, BadSpecsAreConfigErrors) {
  DatasetSpec good = coco(1, 32, 32, cv::Rect(4, 4, 10, 10));
  DatasetSpec s = good;
  s.type = "coco";
  EXPECT_NE(error_of<semat::ConfigError>([&] { TrainingSet t({s}, quiet(32), 1); }).find("unknown type 'coco'"),
            std::string::npos);
  s = good;
  s.weight = -1;
  EXPECT_NE(error_of<semat::ConfigError>([&] { TrainingSet t({s}, quiet(32), 1); }).find("weight"), std::string::npos);
  s.weight = 0;
  EXPECT_NE(error_of<semat::ConfigError>([&] { TrainingSet t({s, s}, quiet(32), 1); }).find("weight"),
            std::string::npos);
  EXPECT_NE(error_of<semat::ConfigError>([&] { TrainingSet t({}, quiet(32), 1); }).find("empty"), std::string::npos);
  s = good;
  s.images.clear();
  EXPECT_NE(error_of<semat::ConfigError>([&] { TrainingSet t({s}, quiet(32), 1); }).find("\"images\""),
            std::string::npos);
  DatasetSpec comp = composition();
  comp.bg.clear();
  EXPECT_NE(error_of<semat::ConfigError>([&] { TrainingSet t({comp}, quiet(32), 1); }).find("\"bg\""),
            std::string::npos);
  AugmentConfig a = quiet(32);
  a.scale_min = 0;
  EXPECT_NE(error_of<semat::ConfigError>([&] { TrainingSet t({good}, a, 1); }).find("scale_min"), std::string::npos);
}

TEST_F(TrainingSetTest, MissingFoldersAndEmptyDatasetsNameTheFolder) {
  DatasetSpec s;
  s.type = "coco-matting-concat";
  s.root = (dir_ / "nowhere").string();
  std::string m = error_of<semat::IoError>([&] { TrainingSet t({s}, quiet(32), 1); });
  EXPECT_NE(m.find(s.root), std::string::npos) << m;
  fs::create_directories(dir_ / "empty");
  s.root = (dir_ / "empty").string();
  m = error_of<semat::DataError>([&] { TrainingSet t({s}, quiet(32), 1); });
  EXPECT_NE(m.find(s.root), std::string::npos) << m;
  DatasetSpec c;
  c.type = "coco-matting", c.root = (dir_ / "empty").string(), c.images = (dir_ / "empty").string();
  m = error_of<semat::DataError>([&] { TrainingSet t({c}, quiet(32), 1); });
  EXPECT_NE(m.find("index*.jsonl"), std::string::npos) << m;
  EXPECT_NE(m.find(c.root), std::string::npos) << m;
  DatasetSpec comp = composition();
  comp.bg = (dir_ / "empty").string();
  m = error_of<semat::DataError>([&] { TrainingSet t({comp}, quiet(32), 1); });
  EXPECT_NE(m.find(comp.bg), std::string::npos) << m;
  comp = composition();
  comp.alpha = (dir_ / "no_alpha").string();
  m = error_of<semat::IoError>([&] { TrainingSet t({comp}, quiet(32), 1); });
  EXPECT_NE(m.find(comp.alpha), std::string::npos) << m;
}

TEST_F(TrainingSetTest, UnpairedCompositionFilesAreNamed) {
  DatasetSpec comp = composition();
  write_image(dir_ / "fg" / "lonely.png", cv::Mat(20, 20, CV_8UC3, cv::Scalar::all(9)));
  std::string m = error_of<semat::DataError>([&] { TrainingSet t({comp}, quiet(32), 1); });
  EXPECT_NE(m.find("lonely.png"), std::string::npos) << m;
  EXPECT_NE(m.find(comp.alpha), std::string::npos) << m;
  fs::remove(dir_ / "fg" / "lonely.png");
  write_image(dir_ / "alpha" / "orphan.png", cv::Mat::zeros(20, 20, CV_8U));
  m = error_of<semat::DataError>([&] { TrainingSet t({comp}, quiet(32), 1); });
  EXPECT_NE(m.find("orphan.png"), std::string::npos) << m;
  EXPECT_NE(m.find(comp.fg), std::string::npos) << m;
  fs::remove(dir_ / "alpha" / "orphan.png");
  write_image(dir_ / "alpha" / "a.jpg", cv::Mat::zeros(20, 20, CV_8U));  // a.png is there too
  m = error_of<semat::DataError>([&] { TrainingSet t({comp}, quiet(32), 1); });
  EXPECT_NE(m.find("a.jpg"), std::string::npos) << m;
}

TEST_F(TrainingSetTest, ConcatWidthNotDivisibleIsNamed) {
  concat_file(dir_ / "plain", "good", 5, 20, 20, cv::Rect(4, 4, 8, 8));
  write_image(dir_ / "plain" / "bad.jpg", cv::Mat(20, 101, CV_8UC3, cv::Scalar::all(50)));
  DatasetSpec s;
  s.type = "coco-matting-concat", s.root = (dir_ / "plain").string();
  const std::string m = error_of<semat::DataError>([&] { TrainingSet t({s}, quiet(32), 1); });
  EXPECT_NE(m.find("bad.jpg"), std::string::npos) << m;
  EXPECT_NE(m.find("101"), std::string::npos) << m;
  std::ofstream(dir_ / "plain" / "bad.jpg") << "not an image";
  const std::string m2 = error_of<semat::IoError>([&] { TrainingSet t({s}, quiet(32), 1); });
  EXPECT_NE(m2.find("bad.jpg"), std::string::npos) << m2;
}

TEST_F(TrainingSetTest, IndexRecordWithMissingFileIsNamed) {
  const DatasetSpec s = coco(2, 32, 32, cv::Rect(4, 4, 10, 10));
  for (const fs::path& p : {dir_ / "out" / "trimap" / "1_101.png", dir_ / "out" / "alpha" / "0_100.png",
                            dir_ / "images" / "sub" / "img_1.png"}) {
    const fs::path keep = p.string() + ".keep";
    fs::rename(p, keep);
    const std::string m = error_of<semat::DataError>([&] { TrainingSet t({s}, quiet(32), 1); });
    EXPECT_NE(m.find(p.filename().string()), std::string::npos) << m;
    EXPECT_NE(m.find("index.jsonl"), std::string::npos) << m;
    fs::rename(keep, p);
  }
  TrainingSet ok({s}, quiet(32), 1);
}

TEST_F(TrainingSetTest, UndecodableOrMismatchedFilesFailAtGetNamingThem) {
  DatasetSpec comp = composition();
  comp.weight = 1;
  std::ofstream(dir_ / "fg" / "a.png", std::ios::trunc) << "garbage";
  TrainingSet ts({comp}, quiet(64), 1);
  int failures = 0;
  for (int64_t k = 0; k < 20; ++k) {
    if (ts.pick(k).second != 0) continue;  // items are sorted by stem: 0 = "a"
    const std::string m = error_of<semat::DataError>([&] { ts.get(k); });
    EXPECT_NE(m.find("a.png"), std::string::npos) << m;
    ++failures;
  }
  EXPECT_GT(failures, 0);
  // An image whose alpha has another size.
  const DatasetSpec c = coco(1, 32, 32, cv::Rect(4, 4, 10, 10));
  write_image(dir_ / "out" / "alpha" / "0_100.png", cv::Mat::zeros(31, 32, CV_8U));
  TrainingSet tc({c}, quiet(32), 1);
  const std::string m = error_of<semat::DataError>([&] { tc.get(0); });
  EXPECT_NE(m.find("0_100.png"), std::string::npos) << m;
  EXPECT_NE(m.find("img_0.png"), std::string::npos) << m;
}

// ---------------------------------------------------------------------------------------------
// Prefetcher

TrainingSample tagged(int64_t k) {
  TrainingSample s;
  s.source = std::to_string(k);
  return s;
}

// 0-4 ms, different per index, so that workers finish out of order.
void jitter_sleep(int64_t k) {
  std::this_thread::sleep_for(std::chrono::microseconds((k * 7919 % 5) * 1000 + (k * 104729 % 997)));
}

TEST(PrefetcherTest, ReturnsInOrderWithThreeWorkers) {
  std::atomic<int> calls{0};
  Prefetcher p(
      [&](int64_t k) {
        ++calls;
        jitter_sleep(k);
        return tagged(k);
      },
      10, 3, 6);
  for (int64_t k = 10; k < 70; ++k) EXPECT_EQ(p.next().source, std::to_string(k));
  EXPECT_LE(calls.load(), 60 + 6);
}

TEST(PrefetcherTest, ExceptionSurfacesAtItsIndex) {
  Prefetcher p(
      [](int64_t k) {
        jitter_sleep(k);
        if (k == 5) throw semat::DataError("broken sample 5");
        return tagged(k);
      },
      0, 3, 4);
  for (int64_t k = 0; k < 5; ++k) EXPECT_EQ(p.next().source, std::to_string(k));
  EXPECT_EQ(error_of<semat::DataError>([&] { p.next(); }), "broken sample 5");
  for (int64_t k = 6; k < 12; ++k) EXPECT_EQ(p.next().source, std::to_string(k));
}

TEST(PrefetcherTest, DestructionWhileBusyOrFullIsPrompt) {
  using Clock = std::chrono::steady_clock;
  {  // workers inside slow producers
    auto p = std::make_unique<Prefetcher>(
        [](int64_t k) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          return tagged(k);
        },
        0, 3, 8);
    EXPECT_EQ(p->next().source, "0");
    const auto t0 = Clock::now();
    p.reset();
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.0);
  }
  {  // queue full, workers waiting for room
    auto p = std::make_unique<Prefetcher>(tagged, 0, 3, 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto t0 = Clock::now();
    p.reset();
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.0);
  }
  {  // never started consuming, exceptions pending
    Prefetcher p([](int64_t) -> TrainingSample { throw std::runtime_error("x"); }, 0, 2, 3);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST(PrefetcherTest, NoWorkersRunsOnTheCallingThread) {
  const auto caller = std::this_thread::get_id();
  Prefetcher p(
      [&](int64_t k) {
        EXPECT_EQ(std::this_thread::get_id(), caller);
        if (k == 2) throw semat::DataError("two");
        return tagged(k);
      },
      0, 0, 4);
  EXPECT_EQ(p.next().source, "0");
  EXPECT_EQ(p.next().source, "1");
  EXPECT_EQ(error_of<semat::DataError>([&] { p.next(); }), "two");
  EXPECT_EQ(p.next().source, "3");
}

// ---------------------------------------------------------------------------------------------
// Speed at the real input size (run with --gtest_also_run_disabled_tests): ms per 1024 sample
// on one thread, for ~1024 px inputs.

TEST_F(TrainingSetTest, DISABLED_SpeedPerSampleAt1024) {
  cv::setNumThreads(1);
  const int w = 1024, h = 768;
  cv::Mat img(h, w, CV_8UC3), noise(h, w, CV_8UC3);
  cv::randu(noise, 0, 255);
  cv::GaussianBlur(noise, img, {0, 0}, 3);
  cv::Mat a = cv::Mat::zeros(h, w, CV_8U);
  cv::ellipse(a, {w / 2, h / 2}, {w / 4, h / 3}, 10, 0, 360, 255, cv::FILLED);
  cv::GaussianBlur(a, a, {0, 0}, 4);
  cv::Mat t;
  cv::threshold(a, t, 0, 128, cv::THRESH_BINARY);
  t.setTo(255, a == 255);
  // coco-matting
  write_image(dir_ / "images" / "x.jpg", img);
  write_image(dir_ / "out" / "alpha" / "1_2.png", a);
  write_image(dir_ / "out" / "trimap" / "1_2.png", t);
  semat::data::IndexRecord rec;
  rec.image_id = 1, rec.ann_id = 2, rec.image = "x.jpg", rec.width = w, rec.height = h;
  rec.score = 99, rec.backend = "closed-form", rec.alpha = "alpha/1_2.png", rec.trimap = "trimap/1_2.png";
  std::ofstream(dir_ / "out" / "index.jsonl") << rec.to_json().dump() << "\n";
  DatasetSpec c;
  c.type = "coco-matting", c.root = (dir_ / "out").string(), c.images = (dir_ / "images").string();
  // concat (3 panels)
  cv::Mat all;
  cv::hconcat(std::vector<cv::Mat>{img, gray3(a), gray3(t)}, all);
  write_image(dir_ / "SEMat_concat" / "x.png", all);
  DatasetSpec cc;
  cc.type = "coco-matting-concat", cc.root = (dir_ / "SEMat_concat").string();
  // composition
  write_image(dir_ / "fg" / "x.png", img);
  write_image(dir_ / "alpha" / "x.png", a);
  write_image(dir_ / "bg" / "b.jpg", noise(cv::Rect(0, 0, 640, 480)));
  DatasetSpec comp;
  comp.type = "composition", comp.fg = (dir_ / "fg").string(), comp.alpha = (dir_ / "alpha").string(),
  comp.bg = (dir_ / "bg").string();
  AugmentConfig aug;  // the defaults: 1024, all augmentation on
  for (const DatasetSpec& s : {c, cc, comp}) {
    TrainingSet ts({s}, aug, 1);
    ts.get(0);
    const int n = 20;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t k = 0; k < n; ++k) ts.get(k);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n;
    std::printf("%-22s %.1f ms per 1024 sample (one thread)\n", s.type.c_str(), ms);
  }
  cv::setNumThreads(-1);
}

}  // namespace
