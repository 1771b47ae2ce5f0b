// The two training-time augmentation pipelines of TrainingSet (architecture notes 8.3). Images
// stay 8-bit until the end: the sources are 8-bit files, and 8-bit resampling is several times
// faster than float (saturation also does the official clip of alpha to [0, 1]).
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "training_internal.h"

namespace semat::data::detail {

// splitmix64 is a bijection, so distinct indices of one seed always get distinct generator
// seeds, and neighbouring indices get unrelated ones.
Rng::Rng(uint64_t seed, int64_t index)
    : g_(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(index))) {}

int64_t Rng::integer(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) + 1;
  if (range == 0) return static_cast<int64_t>(g_());
  // Multiply-shift: the bias is at most range / 2^64, far below anything measurable here.
  const unsigned __int128 m = static_cast<unsigned __int128>(g_()) * range;
  return lo + static_cast<int64_t>(static_cast<uint64_t>(m >> 64));
}

void canonical_trimap(cv::Mat& t8) {
  cv::Mat lut(1, 256, CV_8U);
  for (int v = 0; v < 256; ++v) lut.at<uchar>(v) = v < 85 ? 0 : (v >= 170 ? 255 : 128);
  cv::LUT(t8, lut, t8);
}

namespace {

constexpr int kInterps[4] = {cv::INTER_NEAREST, cv::INTER_LINEAR, cv::INTER_CUBIC,
                             cv::INTER_LANCZOS4};  // one drawn per panel, as the official
// Random crops tried before the crop is centred on the subject: with a subject that covers a few
// percent of the resized image most samples still get a random (unbiased) position.
constexpr int kCropTries = 5;
// Composition trimap: alpha >= 253/255 is "opaque" and <= 2/255 "transparent". The official
// GenMask uses exact 1 and 0; a two-level tolerance keeps JPEG/premultiplication noise in alpha
// files from dissolving the known regions, while trimap fg still guarantees alpha > 0.99.
constexpr int kOpaque = 253, kTransparent = 2;

int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return std::max(lo, std::min(hi, v)); }

cv::Mat trimap_to_float(const cv::Mat& t8) {
  cv::Mat out(t8.size(), CV_32F);
  for (int y = 0; y < t8.rows; ++y) {
    const uchar* s = t8.ptr<uchar>(y);
    float* d = out.ptr<float>(y);
    for (int x = 0; x < t8.cols; ++x) d[x] = s[x] < 85 ? 0.f : (s[x] >= 170 ? 1.f : 0.5f);
  }
  return out;
}

// Tight box of alpha > 0 (pixel edges: x2 = last column + 1), each side moved as GenBBox does,
// clamped to the `alpha8` area.
void set_box(TrainingSample& s, const cv::Mat& alpha8, double f, Rng& rng) {
  const int64_t W = alpha8.cols, H = alpha8.rows;
  const cv::Rect r = cv::boundingRect(alpha8);
  if (r.area() == 0) {
    s.box[0] = 0, s.box[1] = 0, s.box[2] = static_cast<double>(W), s.box[3] = static_cast<double>(H);
    return;
  }
  int64_t x1 = r.x, y1 = r.y, x2 = r.x + r.width, y2 = r.y + r.height;
  if (f > 0) {
    const auto dx = static_cast<int64_t>(std::ceil(f * r.width));
    const auto dy = static_cast<int64_t>(std::ceil(f * r.height));
    x1 += rng.integer(-dx, dx);
    y1 += rng.integer(-dy, dy);
    x2 += rng.integer(-dx, dx);
    y2 += rng.integer(-dy, dy);
  }
  x1 = clamp64(x1, 0, W - 1), y1 = clamp64(y1, 0, H - 1);
  x2 = clamp64(x2, 1, W), y2 = clamp64(y2, 1, H);
  // A small box can cross over when both sides move inwards: keep it one pixel wide.
  if (x2 <= x1) x2 = x1 + 1;
  if (y2 <= y1) y2 = y1 + 1;
  s.box[0] = static_cast<double>(x1), s.box[1] = static_cast<double>(y1);
  s.box[2] = static_cast<double>(x2), s.box[3] = static_cast<double>(y2);
}

float reflect01(float v) {
  v = std::fabs(v);
  return v > 1.f ? 2.f - v : v;
}

// Official RandomJitter: hue + integer degrees in [-40, 40], saturation and value shifted by
// rand * (1.1 - mean) / 5 - (1.1 - mean) / 10 (means over alpha > 0) and reflected into [0, 1].
// Skipped when there is no alpha > 0, as the official. `bgr` is modified in place (a ROI is fine).
void hsv_jitter(cv::Mat bgr, const cv::Mat& alpha8, Rng& rng) {
  const auto hue = static_cast<float>(rng.integer(-40, 40));
  const double us = rng.uniform(), uv = rng.uniform();
  // Means of S = (max - min) / max and V = max straight from the bytes: no full-size HSV copy.
  double s_sum = 0, v_sum = 0;
  int64_t n = 0;
  for (int y = 0; y < bgr.rows; ++y) {
    const auto* p = bgr.ptr<cv::Vec3b>(y);
    const uchar* a = alpha8.ptr<uchar>(y);
    for (int x = 0; x < bgr.cols; ++x) {
      if (!a[x]) continue;
      const int mx = std::max({p[x][0], p[x][1], p[x][2]}), mn = std::min({p[x][0], p[x][1], p[x][2]});
      v_sum += mx;
      if (mx > 0) s_sum += static_cast<double>(mx - mn) / mx;
      ++n;
    }
  }
  if (n == 0) return;
  const double ms = s_sum / static_cast<double>(n), mv = v_sum / (255.0 * static_cast<double>(n));
  const auto sj = static_cast<float>(us * (1.1 - ms) / 5 - (1.1 - ms) / 10);
  const auto vj = static_cast<float>(uv * (1.1 - mv) / 5 - (1.1 - mv) / 10);
  // Row by row through float HSV (H in [0, 360), S and V in [0, 1]): small buffers stay in cache.
  cv::Mat f(1, bgr.cols, CV_32FC3), hsv(1, bgr.cols, CV_32FC3);
  for (int y = 0; y < bgr.rows; ++y) {
    cv::Mat row = bgr.row(y);
    row.convertTo(f, CV_32F, 1.0 / 255);
    cv::cvtColor(f, hsv, cv::COLOR_BGR2HSV);
    auto* p = hsv.ptr<cv::Vec3f>(0);
    for (int x = 0; x < bgr.cols; ++x) {
      float h = p[x][0] + hue;
      if (h >= 360.f) h -= 360.f;
      else if (h < 0.f) h += 360.f;
      p[x][0] = h;
      p[x][1] = reflect01(p[x][1] + sj);
      p[x][2] = reflect01(p[x][2] + vj);
    }
    cv::cvtColor(hsv, f, cv::COLOR_HSV2BGR);
    f.convertTo(row, CV_8U, 255.0);  // same size and type: written into bgr's pixels
  }
}

// A uniformly random pixel whose value is in [lo, hi]; false when there is none.
bool random_pixel(const cv::Mat& a8, int lo, int hi, Rng& rng, cv::Point* p) {
  cv::Mat m;
  cv::inRange(a8, cv::Scalar(lo), cv::Scalar(hi), m);
  const int n = cv::countNonZero(m);
  if (n == 0) return false;
  int64_t k = rng.integer(0, n - 1);
  for (int y = 0; y < m.rows; ++y) {
    const int c = cv::countNonZero(m.row(y));
    if (k >= c) {
      k -= c;
      continue;
    }
    const uchar* r = m.ptr<uchar>(y);
    for (int x = 0; x < m.cols; ++x)
      if (r[x] && k-- == 0) {
        *p = cv::Point(x, y);
        return true;
      }
  }
  return false;
}

// Background scaled to cover size x size (aspect kept) and randomly cropped: only the cropped
// part of the source is resampled.
cv::Mat cover_crop(const cv::Mat& bg, int S, Rng& rng) {
  const double f = std::max(static_cast<double>(S) / bg.cols, static_cast<double>(S) / bg.rows);
  const int rw = std::min(bg.cols, std::max(1, static_cast<int>(std::lround(S / f))));
  const int rh = std::min(bg.rows, std::max(1, static_cast<int>(std::lround(S / f))));
  const auto x = static_cast<int>(rng.integer(0, bg.cols - rw));
  const auto y = static_cast<int>(rng.integer(0, bg.rows - rh));
  cv::Mat out;
  cv::resize(bg(cv::Rect(x, y, rw, rh)), out, cv::Size(S, S), 0, 0,
             f < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

}  // namespace

TrainingSample augment_matting(const cv::Mat& bgr, const cv::Mat& alpha8, const cv::Mat& trimap8,
                               const AugmentConfig& cfg, Rng& rng) {
  const int W = bgr.cols, H = bgr.rows;
  const auto S = static_cast<int>(cfg.size);
  const bool flip = cfg.flip && rng.chance(0.5);
  const double s = rng.uniform(cfg.scale_min, cfg.scale_max);
  const int L = std::max(1, static_cast<int>(std::lround(s * S)));
  const double f = static_cast<double>(L) / std::max(W, H);
  const int w = std::max(1, static_cast<int>(std::lround(W * f)));
  const int h = std::max(1, static_cast<int>(std::lround(H * f)));
  int interp[3];
  for (int& i : interp) i = kInterps[rng.integer(0, 3)];
  const int cw = std::min(w, S), ch = std::min(h, S);

  // Whole-panel cv::resize as the official, then crop: its separable kernels are 2-4x faster
  // than resampling only the crop with a 2-D warp, even when most of the resized image is cut.
  auto resized = [&](const cv::Mat& src, int method) {
    if (w == W && h == H) return src;
    cv::Mat r;
    cv::resize(src, r, cv::Size(w, h), 0, 0, method);
    return r;
  };
  const cv::Mat ra = resized(alpha8, interp[1]);
  // The crop is drawn in the flipped image; `unflipped` gives its columns before the flip, so
  // only the crop is ever mirrored.
  int x0 = 0, y0 = 0;
  auto unflipped = [&](int x) { return cv::Rect(flip ? w - x - cw : x, y0, cw, ch); };
  if (w > cw || h > ch) {
    bool found = false;
    for (int t = 0; t < kCropTries && !found; ++t) {
      x0 = static_cast<int>(rng.integer(0, w - cw));
      y0 = static_cast<int>(rng.integer(0, h - ch));
      found = cv::countNonZero(ra(unflipped(x0))) > 0;
    }
    if (!found) {
      const cv::Rect r = cv::boundingRect(ra);
      if (r.area() > 0) {
        double cx = r.x + r.width * 0.5;
        if (flip) cx = w - cx;
        x0 = static_cast<int>(clamp64(std::lround(cx - cw * 0.5), 0, w - cw));
        y0 = static_cast<int>(clamp64(std::lround(r.y + r.height * 0.5 - ch * 0.5), 0, h - ch));
      }
    }
  }
  auto place = [&](const cv::Mat& r, cv::Mat dst) {
    const cv::Mat roi = r(unflipped(x0));
    if (flip) cv::flip(roi, dst, 1);  // dst has roi's size and type: written in place
    else roi.copyTo(dst);
  };
  TrainingSample out;
  out.image = cv::Mat::zeros(S, S, CV_8UC3);
  cv::Mat a8 = cv::Mat::zeros(S, S, CV_8U), t8 = cv::Mat::zeros(S, S, CV_8U);
  const cv::Rect content(0, 0, cw, ch);
  place(resized(bgr, interp[0]), out.image(content));
  place(ra, a8(content));
  place(resized(trimap8, interp[2]), t8(content));
  // Jitter before the padding counts: black padding must stay black.
  if (cfg.color_jitter) hsv_jitter(out.image(content), a8(content), rng);
  cv::cvtColor(out.image, out.image, cv::COLOR_BGR2RGB);
  set_box(out, a8(content), cfg.box_jitter, rng);
  a8.convertTo(out.alpha, CV_32F, 1.0 / 255);
  out.trimap = trimap_to_float(t8);  // re-decoded: interpolation leaves in-between greys
  return out;
}

void square_resize(cv::Mat& fg, cv::Mat& alpha8, int side, Rng& rng) {
  const int interp = kInterps[rng.integer(0, 3)];
  cv::resize(fg, fg, {side, side}, 0, 0, interp);
  cv::resize(alpha8, alpha8, {side, side}, 0, 0, interp);
}

void merge_foregrounds(cv::Mat& fg, cv::Mat& alpha8, const cv::Mat& fg2_in, const cv::Mat& alpha2_in) {
  cv::Mat fg2 = fg2_in, a2 = alpha2_in;
  if (fg2.size() != fg.size()) cv::resize(fg2_in, fg2, fg.size(), 0, 0, cv::INTER_LINEAR);
  if (a2.size() != fg.size()) cv::resize(alpha2_in, a2, fg.size(), 0, 0, cv::INTER_LINEAR);
  cv::Mat out_fg(fg.size(), CV_8UC3), out_a(fg.size(), CV_8U);
  for (int y = 0; y < fg.rows; ++y) {
    const auto* f1 = fg.ptr<cv::Vec3b>(y);
    const auto* f2 = fg2.ptr<cv::Vec3b>(y);
    const uchar* p1 = alpha8.ptr<uchar>(y);
    const uchar* p2 = a2.ptr<uchar>(y);
    auto* of = out_fg.ptr<cv::Vec3b>(y);
    uchar* oa = out_a.ptr<uchar>(y);
    for (int x = 0; x < fg.cols; ++x) {
      const int a = p1[x], b = p2[x];
      for (int c = 0; c < 3; ++c) of[x][c] = static_cast<uchar>((f1[x][c] * a + f2[x][c] * (255 - a) + 127) / 255);
      oa[x] = static_cast<uchar>(255 - ((255 - a) * (255 - b) + 127) / 255);
    }
  }
  fg = out_fg;
  alpha8 = out_a;
}

TrainingSample augment_composition(const cv::Mat& fg, const cv::Mat& alpha8, const cv::Mat& bg,
                                   const AugmentConfig& cfg, Rng& rng) {
  const int W = fg.cols, H = fg.rows;
  const auto S = static_cast<int>(cfg.size);
  // Random affine (official RandomAffine(30, scale 0.8-1.25, shear 10, flip 0.5)) about the
  // image centre, on a canvas of the image's size as the official warp, scaled up first when it
  // is smaller than the crop ("resize up if smaller"): the one map goes straight to the crop.
  const double ang = rng.uniform(-30, 30) * CV_PI / 180;
  const double sc = rng.uniform(0.8, 1.25);
  const double shear = std::tan(rng.uniform(-10, 10) * CV_PI / 180);
  const bool flip = rng.chance(0.5) && cfg.flip;
  const double up = std::max(1.0, static_cast<double>(S) / std::min(W, H));
  const int Wc = std::max(S, static_cast<int>(std::lround(W * up)));
  const int Hc = std::max(S, static_cast<int>(std::lround(H * up)));
  // Linear part: up * R(ang) * [[1, shear], [0, 1]] * diag(+-sc, sc).
  const double c = std::cos(ang), s = std::sin(ang), dx = flip ? -sc : sc;
  const double l00 = up * c * dx, l01 = up * (c * shear - s) * sc;
  const double l10 = up * s * dx, l11 = up * (s * shear + c) * sc;
  const double cx = (W - 1) * 0.5, cy = (H - 1) * 0.5, ccx = (Wc - 1) * 0.5, ccy = (Hc - 1) * 0.5;
  const double tx = ccx - (l00 * cx + l01 * cy), ty = ccy - (l10 * cx + l11 * cy);

  // Erosion kernels (disc diameters) at the 640 px reference, scaled to this canvas.
  const double kscale = std::sqrt(static_cast<double>(Wc) * Hc) / 640.0;
  const double r_fg = std::max(0.0, (rng.integer(cfg.trimap_min_kernel, cfg.trimap_max_kernel) * kscale - 1) / 2);
  const double r_bg = std::max(0.0, (rng.integer(cfg.trimap_min_kernel, cfg.trimap_max_kernel) * kscale - 1) / 2);
  const int margin = static_cast<int>(std::ceil(std::max(r_fg, r_bg))) + 2;

  // Crop centre: a random pixel that will be unknown (0 < alpha < 1), else one of the subject,
  // mapped through the affine and moved by up to a quarter of the crop so that the unknown pixel
  // is not always at the centre.
  cv::Point p;
  double qx, qy;
  if (random_pixel(alpha8, kTransparent + 1, kOpaque - 1, rng, &p) ||
      random_pixel(alpha8, kTransparent + 1, 255, rng, &p)) {
    qx = l00 * p.x + l01 * p.y + tx + rng.uniform(-0.25, 0.25) * S;
    qy = l10 * p.x + l11 * p.y + ty + rng.uniform(-0.25, 0.25) * S;
  } else {
    qx = rng.uniform(0, Wc), qy = rng.uniform(0, Hc);
  }
  const int x0 = static_cast<int>(clamp64(std::lround(qx - S * 0.5), 0, Wc - S));
  const int y0 = static_cast<int>(clamp64(std::lround(qy - S * 0.5), 0, Hc - S));

  // Warp the crop plus a margin wide enough for the erosions to see past its edges.
  const int N = S + 2 * margin, ox = x0 - margin, oy = y0 - margin;
  const cv::Matx23d m(l00, l01, tx - ox, l10, l11, ty - oy);
  cv::Mat fgw, aw;
  cv::warpAffine(fg, fgw, m, cv::Size(N, N), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  cv::warpAffine(alpha8, aw, m, cv::Size(N, N), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0));

  // Trimap: erode the opaque and the transparent regions by discs (a 3x3 chamfer distance
  // transform, within a few percent of Euclidean: the cost does not grow with the kernel). Beyond the canvas both masks are set, so a subject cut
  // by the canvas edge is not eroded from it (cv::erode's default border, as the official).
  cv::Mat fgm = aw >= kOpaque, bgm = aw <= kTransparent;
  const cv::Rect canvas = cv::Rect(-ox, -oy, Wc, Hc) & cv::Rect(0, 0, N, N);
  for (const cv::Rect& r : {cv::Rect(0, 0, N, canvas.y), cv::Rect(0, canvas.br().y, N, N - canvas.br().y),
                            cv::Rect(0, 0, canvas.x, N), cv::Rect(canvas.br().x, 0, N - canvas.br().x, N)}) {
    if (r.area() <= 0) continue;
    fgm(r).setTo(255);
    bgm(r).setTo(255);
  }
  cv::Mat dfg, dbg;
  cv::distanceTransform(fgm, dfg, cv::DIST_L2, cv::DIST_MASK_3);
  cv::distanceTransform(bgm, dbg, cv::DIST_L2, cv::DIST_MASK_3);

  TrainingSample out;
  const cv::Rect crop(margin, margin, S, S);
  out.trimap.create(S, S, CV_32F);
  for (int y = 0; y < S; ++y) {
    const float* f = dfg.ptr<float>(y + margin) + margin;
    const float* b = dbg.ptr<float>(y + margin) + margin;
    float* t = out.trimap.ptr<float>(y);
    for (int x = 0; x < S; ++x) t[x] = f[x] > r_fg ? 1.f : (b[x] > r_bg ? 0.f : 0.5f);
  }
  cv::Mat fgc = fgw(crop), ac = aw(crop);
  if (cfg.color_jitter) hsv_jitter(fgc, ac, rng);
  const cv::Mat bgc = cover_crop(bg, S, rng);
  out.image.create(S, S, CV_8UC3);
  for (int y = 0; y < S; ++y) {
    const auto* f = fgc.ptr<cv::Vec3b>(y);
    const auto* b = bgc.ptr<cv::Vec3b>(y);
    const uchar* a = ac.ptr<uchar>(y);
    auto* o = out.image.ptr<cv::Vec3b>(y);
    for (int x = 0; x < S; ++x) {
      const int A = a[x];
      for (int k = 0; k < 3; ++k)  // BGR in, RGB out
        o[x][2 - k] = static_cast<uchar>((f[x][k] * A + b[x][k] * (255 - A) + 127) / 255);
    }
  }
  set_box(out, ac, cfg.box_jitter, rng);
  ac.convertTo(out.alpha, CV_32F, 1.0 / 255);
  return out;
}

}  // namespace semat::data::detail
