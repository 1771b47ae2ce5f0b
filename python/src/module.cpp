// The _semat extension: the C++ library under the `semat` Python package (python/semat). The
// Python files hold the public functions' signatures and docs; this module does the work, with
// the GIL released while the library runs.
#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>

#include "binding.h"
#include "semat/core/error.h"
#include "semat/io/files.h"
#include "semat/io/image_io.h"
#include "semat/metrics/evaluate.h"

namespace py = pybind11;

PYBIND11_MODULE(_semat, m) {
  m.doc() = "semat's C++ library (use the `semat` package, not this module)";
  m.attr("__version__") = SEMAT_VERSION;
  semat::python::register_errors(m);
  semat::python::bind_matte(m);
  semat::python::bind_metrics(m);
  semat::python::bind_sam(m);
  m.def(
      "_set_cv_threads", [](int n) { cv::setNumThreads(n); }, py::arg("n"),
      "OpenCV's worker threads (the closed-form solver's parallel loops); tests use 1.");
  m.def("_get_cv_threads", [] { return cv::getNumThreads(); });

  // Image files without PIL or OpenCV's Python package (Debian's python3 has neither by default).
  m.def(
      "read_image",
      [](const std::string& path) {
        cv::Mat rgb;
        cv::cvtColor(semat::io::read_color(path), rgb, cv::COLOR_BGR2RGB);
        return semat::python::to_numpy(rgb);
      },
      py::arg("path"), "An image file as uint8 HxWx3 RGB (as semat reads it: grey, 16-bit and alpha converted).");
  m.def(
      "read_alpha", [](const std::string& path) { return semat::python::to_numpy(semat::metrics::read_alpha(path)); },
      py::arg("path"), "A matte file as float64 HxW holding exactly k/255 (8-bit) or k/65535 (16-bit).");
  m.def(
      "write_png",
      [](const std::string& path, const py::array& image) {
        const semat::python::ImageIn in = semat::python::image_in(image, "RGB", "image");
        cv::Mat out = in.mat;
        if (in.order == semat::ChannelOrder::kRGB) {  // PNG is BGR; a new Mat: in.mat may be the caller's array
          out = cv::Mat();
          cv::cvtColor(in.mat, out, cv::COLOR_RGB2BGR);
        }
        if (image.ndim() == 2 || image.shape(2) == 1)
          cv::cvtColor(in.mat, out, cv::COLOR_BGR2GRAY);  // grey stays one channel
        if (image.ndim() == 3 && image.shape(2) == 4) {    // RGBA keeps its alpha
          const py::array c = py::module_::import("numpy").attr("ascontiguousarray")(image);
          cv::cvtColor(cv::Mat(static_cast<int>(c.shape(0)), static_cast<int>(c.shape(1)), CV_8UC4,
                               const_cast<void*>(c.data())),
                       out, cv::COLOR_RGBA2BGRA);
        }
        semat::io::write_file_atomic(path, semat::io::encode_png(out));
      },
      py::arg("path"), py::arg("image"), "Writes a uint8 HxW, HxWx3 (RGB) or HxWx4 (RGBA) array as PNG (atomically).");
}
