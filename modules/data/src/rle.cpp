#include "semat/data/rle.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <opencv2/core.hpp>

#include "semat/core/error.h"

namespace semat::data {
namespace {

// maskApi.c converts doubles to int with a C cast. On x86-64 that is cvttsd2si, which yields
// INT_MIN for NaN and out-of-range values (a repeated polygon vertex divides 0 by 0); C++ calls
// that undefined, so the hardware result is reproduced explicitly.
int c_int(double v) {
  if (!(v > -2147483649.0 && v < 2147483648.0)) return INT_MIN;
  return static_cast<int>(v);
}

// Sutherland-Hodgman clip of polygon `xy` (x,y pairs) to the box [x0, x1] x [y0, y1]. Inside the
// box the clipped polygon has the same edges, so the rasterised mask is unchanged there; the
// edges it adds lie on the box, outside the image.
std::vector<double> clip_polygon(const std::vector<double>& xy, double x0, double y0, double x1, double y1) {
  std::vector<double> in = xy, out;
  // Edge e: 0 x >= x0, 1 x <= x1, 2 y >= y0, 3 y <= y1.
  for (int e = 0; e < 4 && in.size() >= 2; ++e) {
    const int axis = e / 2;
    const double bound = e == 0 ? x0 : e == 1 ? x1 : e == 2 ? y0 : y1;
    auto inside = [&](double px, double py) {
      const double v = axis == 0 ? px : py;
      return e % 2 == 0 ? v >= bound : v <= bound;
    };
    out.clear();
    const std::size_t n = in.size() / 2;
    for (std::size_t i = 0; i < n; ++i) {
      const double ax = in[2 * i], ay = in[2 * i + 1];
      const double bx = in[2 * ((i + 1) % n)], by = in[2 * ((i + 1) % n) + 1];
      const bool a_in = inside(ax, ay), b_in = inside(bx, by);
      if (a_in) out.insert(out.end(), {ax, ay});
      if (a_in != b_in) {
        const double t = axis == 0 ? (bound - ax) / (bx - ax) : (bound - ay) / (by - ay);
        if (axis == 0)
          out.insert(out.end(), {bound, ay + t * (by - ay)});
        else
          out.insert(out.end(), {ax + t * (bx - ax), bound});
      }
    }
    in.swap(out);
  }
  return in;
}

}  // namespace

Rle rle_from_string(const std::string& s, int height, int width) {
  SEMAT_CHECK(height >= 0 && width >= 0, DataError,
              "RLE size [" << height << ", " << width << "] is negative");
  Rle r;
  r.height = height;
  r.width = width;
  r.counts.reserve(s.size());
  size_t p = 0;
  while (p < s.size()) {
    std::int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      SEMAT_CHECK(p < s.size(), DataError,
                  "RLE counts string ends inside a value (truncated string?)");
      const int c = static_cast<unsigned char>(s[p]) - 48;
      SEMAT_CHECK(c >= 0 && c < 64 && k < 12, DataError,
                  "RLE counts string has an invalid character '" << s[p] << "' at " << p);
      x |= static_cast<std::int64_t>(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= static_cast<std::int64_t>(-1) * (std::int64_t{1} << (5 * k));
    }
    if (r.counts.size() > 2) x += r.counts[r.counts.size() - 2];
    SEMAT_CHECK(
        x >= 0 && x <= std::int64_t{UINT32_MAX}, DataError,
        "RLE counts string decodes to an invalid count " << x << " at run " << r.counts.size());
    r.counts.push_back(static_cast<std::uint32_t>(x));
  }
  return r;
}

std::string rle_to_string(const Rle& rle) {
  std::string s;
  s.reserve(rle.counts.size() * 2);
  for (size_t i = 0; i < rle.counts.size(); ++i) {
    std::int64_t x = rle.counts[i];
    if (i > 2) x -= rle.counts[i - 2];
    bool more = true;
    while (more) {
      int c = static_cast<int>(x & 0x1f);
      x >>= 5;  // arithmetic shift, as maskApi.c's long
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      s.push_back(static_cast<char>(c + 48));
    }
  }
  return s;
}

Rle rle_from_mask(const cv::Mat& mask) {
  SEMAT_CHECK(mask.type() == CV_8UC1, InvalidArgument, "rle_from_mask: CV_8UC1 mask expected");
  Rle r;
  r.height = mask.rows;
  r.width = mask.cols;
  cv::Mat t;
  cv::transpose(mask, t);  // column-major order becomes row-major
  std::uint8_t current = 0;
  std::uint32_t run = 0;
  for (int y = 0; y < t.rows; ++y) {
    const std::uint8_t* row = t.ptr<std::uint8_t>(y);
    for (int x = 0; x < t.cols; ++x) {
      const std::uint8_t v = row[x] ? 1 : 0;
      if (v != current) {
        r.counts.push_back(run);
        run = 0;
        current = v;
      }
      ++run;
    }
  }
  r.counts.push_back(run);
  return r;
}

cv::Mat rle_to_mask(const Rle& rle) {
  const std::uint64_t total = static_cast<std::uint64_t>(rle.height) * rle.width;
  std::uint64_t sum = 0;
  for (std::uint32_t c : rle.counts) sum += c;
  SEMAT_CHECK(sum == total, DataError,
              "RLE counts sum to " << sum << " but its size [" << rle.height << ", " << rle.width
                                   << "] has " << total << " pixels");
  cv::Mat t(rle.width, rle.height, CV_8U);
  std::uint8_t* out = t.data;  // freshly allocated, continuous
  std::uint8_t v = 0;
  for (std::uint32_t c : rle.counts) {
    std::fill(out, out + c, v);
    out += c;
    v = v ? 0 : 255;
  }
  cv::Mat mask;
  cv::transpose(t, mask);
  return mask;
}

Rle rle_from_polygon(const std::vector<double>& xy_in, int h, int w) {
  SEMAT_CHECK(
      xy_in.size() >= 6 && xy_in.size() % 2 == 0, DataError,
      "polygon has " << xy_in.size() << " coordinates; expected x,y pairs of at least 3 points");
  SEMAT_CHECK(h >= 0 && w >= 0 && static_cast<std::int64_t>(h) * w <= INT32_MAX, DataError,
              "polygon mask of " << w << "x" << h << " pixels is negative or too large");
  for (double v : xy_in)
    SEMAT_CHECK(std::isfinite(v), DataError, "polygon holds a coordinate that is not a finite number");
  // The boundary walk below visits every (5x upsampled) point of every edge, so its work follows
  // the coordinates: a vertex at 1e8 would mean billions of points. Polygons reaching beyond a
  // one-pixel margin around the image are clipped to it first (those inside it, the normal case,
  // are rasterised unchanged, bit for bit like pycocotools).
  bool outside = false;
  for (std::size_t j = 0; j < xy_in.size(); j += 2)
    outside |= xy_in[j] < -1 || xy_in[j] > w + 1 || xy_in[j + 1] < -1 || xy_in[j + 1] > h + 1;
  const std::vector<double> xy = outside ? clip_polygon(xy_in, -1, -1, w + 1, h + 1) : xy_in;
  if (xy.size() < 6) return Rle{h, w, {static_cast<std::uint32_t>(h * w)}};  // wholly outside
  const double scale = 5;
  {
    // Points the walk will produce: bounded by the image now, but a polygon with millions of
    // vertices zigzagging across a large image still could be too many.
    double points = 0;
    for (std::size_t j = 0; j < xy.size(); j += 2) {
      const std::size_t n = (j + 2) % xy.size();
      points += scale * std::max(std::abs(xy[n] - xy[j]), std::abs(xy[n + 1] - xy[j + 1])) + 2;
    }
    SEMAT_CHECK(points <= double{1 << 27}, DataError,
                "polygon of " << xy.size() / 2 << " points is too long to rasterise (boundary of "
                              << points / scale << " pixels)");
  }
  const size_t k = xy.size() / 2;
  // Upsample and get discrete points densely along the entire boundary.
  std::vector<int> x(k + 1), y(k + 1);
  for (size_t j = 0; j < k; ++j) x[j] = c_int(scale * xy[j * 2 + 0] + .5);
  x[k] = x[0];
  for (size_t j = 0; j < k; ++j) y[j] = c_int(scale * xy[j * 2 + 1] + .5);
  y[k] = y[0];
  std::vector<int> u, v;
  for (size_t j = 0; j < k; ++j) {
    int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    const double s =
        dx >= dy ? static_cast<double>(ye - ys) / dx : static_cast<double>(xe - xs) / dy;
    if (dx >= dy) {
      for (int d = 0; d <= dx; ++d) {
        const int t = flip ? dx - d : d;
        u.push_back(t + xs);
        v.push_back(c_int(ys + s * t + .5));
      }
    } else {
      for (int d = 0; d <= dy; ++d) {
        const int t = flip ? dy - d : d;
        v.push_back(t + ys);
        u.push_back(c_int(xs + s * t + .5));
      }
    }
  }
  // Get points along the y-boundary and downsample.
  std::vector<std::uint32_t> a;
  for (size_t j = 1; j < u.size(); ++j) {
    if (u[j] == u[j - 1]) continue;
    double xd = static_cast<double>(u[j] < u[j - 1] ? u[j] : u[j] - 1);
    xd = (xd + .5) / scale - .5;
    if (std::floor(xd) != xd || xd < 0 || xd > w - 1) continue;
    double yd = static_cast<double>(v[j] < v[j - 1] ? v[j] : v[j - 1]);
    yd = (yd + .5) / scale - .5;
    if (yd < 0)
      yd = 0;
    else if (yd > h)
      yd = h;
    yd = std::ceil(yd);
    a.push_back(static_cast<std::uint32_t>(static_cast<int>(xd) * h + static_cast<int>(yd)));
  }
  // RLE from the y-boundary points: sorted positions become runs; zero-length runs merge.
  a.push_back(static_cast<std::uint32_t>(h * w));
  std::sort(a.begin(), a.end());
  std::uint32_t prev = 0;
  for (std::uint32_t& e : a) {
    const std::uint32_t t = e;
    e -= prev;
    prev = t;
  }
  Rle r;
  r.height = h;
  r.width = w;
  size_t j = 0;
  r.counts.push_back(a[j++]);
  while (j < a.size()) {
    if (a[j] > 0) {
      r.counts.push_back(a[j++]);
    } else {
      ++j;
      if (j < a.size()) r.counts.back() += a[j++];
    }
  }
  return r;
}

cv::Mat polygons_to_mask(const std::vector<std::vector<double>>& polygons, int height, int width) {
  SEMAT_CHECK(!polygons.empty(), DataError, "segmentation has an empty polygon list");
  cv::Mat mask;
  for (const auto& poly : polygons) {
    cv::Mat m = rle_to_mask(rle_from_polygon(poly, height, width));
    if (mask.empty())
      mask = m;
    else
      cv::bitwise_or(mask, m, mask);
  }
  return mask;
}

}  // namespace semat::data
