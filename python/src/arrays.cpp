// numpy <-> cv::Mat. In: packed uint8 arrays are wrapped, not copied; out: arrays view the Mat.
#include <cmath>
#include <sstream>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "binding.h"
#include "semat/core/error.h"
#include "semat/io/image_io.h"
#include "semat/metrics/evaluate.h"

namespace semat::python {

namespace {

bool is_path(py::handle obj) {
  return py::isinstance<py::str>(obj) || py::hasattr(obj, "__fspath__");
}

std::string fspath(py::handle obj) {
  return py::str(py::module_::import("os").attr("fspath")(obj)).cast<std::string>();
}

py::array as_array(py::handle obj, const std::string& what, const char* expected) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  SEMAT_CHECK(!obj.is_none(), InvalidArgument, what << " is None; give " << expected);
  // Array-likes (PIL images, nested lists...) through numpy's own conversion.
  try {
    return py::module_::import("numpy").attr("asarray")(obj);
  } catch (const py::error_already_set&) {
    SEMAT_CHECK(false, InvalidArgument,
                what << ": a " << py::str(py::type::of(obj).attr("__name__")).cast<std::string>()
                     << " is neither a path nor an array; give " << expected);
  }
  return {};
}

// A Mat header over the array's pixels when each row is packed (pixel stride = channels, channel
// stride = 1, rows may be padded as in a crop view); empty otherwise.
cv::Mat wrap_packed(const py::array& a, int type) {
  const auto h = a.shape(0), w = a.shape(1);
  const int ch = CV_MAT_CN(type);
  const auto esize = static_cast<py::ssize_t>(CV_ELEM_SIZE1(type));
  // (numpy gives a length-1 axis any stride, e.g. 0 for x[..., None])
  const bool packed = (a.ndim() == 2 || a.shape(2) == 1 || a.strides(2) == esize) && a.strides(1) == esize * ch &&
                      a.strides(0) >= w * esize * ch;
  if (!packed) return {};
  return cv::Mat(static_cast<int>(h), static_cast<int>(w), type, const_cast<void*>(a.data()),
                 static_cast<size_t>(a.strides(0)));
}

int channels_of(const py::array& a) { return a.ndim() == 2 ? 1 : static_cast<int>(a.shape(2)); }

}  // namespace

std::string describe_array(const py::array& a) {
  std::ostringstream os;
  os << "shape (";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) os << (i ? ", " : "") << a.shape(i);
  os << (a.ndim() == 1 ? ",)" : ")") << " dtype " << py::str(a.dtype()).cast<std::string>();
  return os.str();
}

ImageIn image_in(py::handle obj, const std::string& image_format, const std::string& what) {
  SEMAT_CHECK(image_format == "RGB" || image_format == "BGR", InvalidArgument,
              "image_format '" << image_format << "' must be 'RGB' or 'BGR'");
  ImageIn in;
  if (is_path(obj)) {
    in.path = fspath(obj);
    in.mat = io::read_color(in.path);
    in.copies = -1;
    return in;
  }
  const char* expected = "a path or a uint8 numpy array HxWx3 (RGB), HxWx4 (RGBA) or HxW (grey)";
  py::array a = as_array(obj, what, expected);
  const bool shape_ok = (a.ndim() == 2 || (a.ndim() == 3 && (a.shape(2) == 1 || a.shape(2) == 3 ||
                                                             a.shape(2) == 4)));
  SEMAT_CHECK(shape_ok, InvalidArgument,
              what << " has " << describe_array(a) << "; give " << expected);
  SEMAT_CHECK(a.dtype().kind() == 'u' && a.dtype().itemsize() == 1, InvalidArgument,
              what << " has " << describe_array(a)
                   << "; images must be uint8 (0..255): for floats in [0, 1] pass "
                      "(image * 255).round().astype(numpy.uint8)");
  SEMAT_CHECK(a.shape(0) > 0 && a.shape(1) > 0, InvalidArgument,
              what << " is empty (" << describe_array(a) << ")");
  const int ch = channels_of(a);
  in.keep = a;
  // The library reads 3-channel pixels in either order (models build their RGB input from them,
  // the classical stages do not weigh channels), so a packed array is never copied: it is read
  // in the order it was declared to have.
  const ChannelOrder declared = image_format == "RGB" ? ChannelOrder::kRGB : ChannelOrder::kBGR;
  // A channel-reversed view of packed pixels (img[..., ::-1], the usual way to swap OpenCV's BGR
  // and RGB) lies in memory in the other order: read as such from its last channel's address it
  // is a packed image, and needs no copy either.
  if (ch == 3 && a.strides(2) == -1 && a.strides(1) == 3 && a.strides(0) >= 3 * a.shape(1)) {
    auto* first = static_cast<std::uint8_t*>(const_cast<void*>(a.data())) - 2;
    in.mat = cv::Mat(static_cast<int>(a.shape(0)), static_cast<int>(a.shape(1)), CV_8UC3, first,
                     static_cast<size_t>(a.strides(0)));
    in.order = declared == ChannelOrder::kRGB ? ChannelOrder::kBGR : ChannelOrder::kRGB;
    in.shares_input = true;
    return in;
  }
  cv::Mat view = wrap_packed(a, CV_8UC(ch));
  if (view.empty()) {  // e.g. every other column, img[:, ::2]
    a = py::module_::import("numpy").attr("ascontiguousarray")(a);
    in.keep = a;
    view = wrap_packed(a, CV_8UC(ch));
    in.copies += 1;
  }
  if (ch == 3) {
    in.mat = view;  // no copy, in either order
    in.order = declared;
    in.shares_input = in.copies == 0;
    return in;
  }
  // RGBA / BGRA: the colour channels kept in their order (alpha dropped); grey: replicated.
  in.order = ch == 4 ? declared : ChannelOrder::kBGR;
  {
    py::gil_scoped_release unlocked;
    cv::cvtColor(view, in.mat, ch == 4 ? cv::COLOR_BGRA2BGR : cv::COLOR_GRAY2BGR);
  }
  in.copies += 1;
  return in;
}

cv::Mat gray8_in(py::handle obj, const std::string& what) {
  if (is_path(obj)) return io::read_gray8(fspath(obj));
  const char* expected = "a path or a uint8 numpy array HxW";
  py::array a = as_array(obj, what, expected);
  SEMAT_CHECK(a.ndim() == 2 || (a.ndim() == 3 && a.shape(2) == 1), InvalidArgument,
              what << " has " << describe_array(a) << "; give " << expected);
  SEMAT_CHECK(a.dtype().kind() == 'u' && a.dtype().itemsize() == 1, InvalidArgument,
              what << " has " << describe_array(a) << "; it must be uint8 (0..255)");
  SEMAT_CHECK(a.shape(0) > 0 && a.shape(1) > 0, InvalidArgument, what << " is empty");
  a = py::module_::import("numpy").attr("ascontiguousarray")(a);
  return wrap_packed(a, CV_8UC1).clone();  // small, and owned past the array's lifetime
}

cv::Mat alpha_in(py::handle obj, const std::string& what) {
  if (is_path(obj)) return metrics::read_alpha(fspath(obj));
  const char* expected = "a path or a numpy array HxW (uint8, uint16, or float in [0, 1])";
  py::array a = as_array(obj, what, expected);
  SEMAT_CHECK(a.ndim() == 2 || (a.ndim() == 3 && a.shape(2) == 1), InvalidArgument,
              what << " has " << describe_array(a) << "; give " << expected);
  SEMAT_CHECK(a.shape(0) > 0 && a.shape(1) > 0, InvalidArgument, what << " is empty");
  const char kind = a.dtype().kind();
  const auto size = a.dtype().itemsize();
  int type = -1;
  double scale = 1.0;
  if (kind == 'u' && size == 1) type = CV_8U, scale = 1.0 / 255;
  if (kind == 'u' && size == 2) type = CV_16U, scale = 1.0 / 65535;
  if (kind == 'f' && size == 4) type = CV_32F;
  if (kind == 'f' && size == 8) type = CV_64F;
  SEMAT_CHECK(type >= 0, InvalidArgument,
              what << " has " << describe_array(a)
                   << "; alpha mattes must be uint8 (k/255), uint16 (k/65535) or float32/float64 in [0, 1]");
  a = py::module_::import("numpy").attr("ascontiguousarray")(a);
  cv::Mat out;
  wrap_packed(a, type).convertTo(out, CV_64F, scale);
  if (kind == 'f') {
    SEMAT_CHECK(cv::checkRange(out), InvalidArgument, what << " holds NaN or infinite values");
    double lo = 0, hi = 0;
    cv::minMaxLoc(out, &lo, &hi);
    SEMAT_CHECK(lo >= 0 && hi <= 1, InvalidArgument,
                what << " has values in [" << lo << ", " << hi << "]; float mattes must lie in [0, 1]");
  }
  return out;
}

py::array to_numpy(const cv::Mat& m) {
  SEMAT_CHECK(!m.empty(), Error, "to_numpy: empty result");
  py::dtype dt;
  switch (m.depth()) {
    case CV_8U: dt = py::dtype::of<std::uint8_t>(); break;
    case CV_16U: dt = py::dtype::of<std::uint16_t>(); break;
    case CV_32S: dt = py::dtype::of<std::int32_t>(); break;
    case CV_32F: dt = py::dtype::of<float>(); break;
    case CV_64F: dt = py::dtype::of<double>(); break;
    default: throw Error("to_numpy: unsupported Mat depth " + std::to_string(m.depth()));
  }
  auto* owner = new cv::Mat(m);  // shares the pixels (reference-counted), copies the header only
  py::capsule base(owner, [](void* p) { delete static_cast<cv::Mat*>(p); });
  const auto e1 = static_cast<py::ssize_t>(m.elemSize1());
  const auto es = static_cast<py::ssize_t>(m.elemSize());
  if (m.channels() == 1)
    return py::array(dt, {m.rows, m.cols}, {static_cast<py::ssize_t>(m.step[0]), es}, owner->data, base);
  return py::array(dt, {m.rows, m.cols, m.channels()},
                   {static_cast<py::ssize_t>(m.step[0]), es, e1}, owner->data, base);
}

}  // namespace semat::python
