// Shared pieces of the _semat extension: numpy <-> cv::Mat, the image rule, error translation.
#pragma once

#include <string>

#include <opencv2/core/mat.hpp>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "semat/core/channel_order.h"

namespace semat::python {

namespace py = pybind11;

/// An image as the library takes it: CV_8UC3 in the channel order `order` (the library reads
/// either: semat/core/channel_order.h). `mat` may point into the caller's numpy buffer (`keep`
/// holds that array alive), so it must be used while `keep` lives.
struct ImageIn {
  cv::Mat mat;
  py::object keep;
  /// The order of `mat`'s pixels in memory: the declared image_format for a packed array, the
  /// other one for a channel-reversed view (img[..., ::-1]), BGR for files and grey.
  ChannelOrder order = ChannelOrder::kBGR;
  /// Pixel copies made between the caller's object and `mat`: 0 for a packed uint8 HxWx3 array
  /// in either order (RGB or BGR) and for a channel-reversed view of packed pixels (read in the
  /// order they have in memory); 1 for RGBA/BGRA (dropping alpha) and for grey (the expansion to
  /// three channels); +1 when the rows were not packed (np.ascontiguousarray first). Files: -1.
  int copies = 0;
  /// `mat` reads the caller's own buffer (no copy; it must not be written to).
  bool shares_input = false;
  std::string path;  ///< the file it was read from, or "" for an array
};

/// The image rule of the Python API. `obj`: a path (str / os.PathLike, decoded like the CLI
/// does), or a numpy uint8 array HxWx3 (channel order `image_format`, "RGB" or "BGR"), HxWx4
/// (RGBA / BGRA: the alpha channel is ignored) or HxW / HxWx1 (grey, replicated). Anything else:
/// InvalidArgument naming `what` and the shape/dtype it got.
ImageIn image_in(py::handle obj, const std::string& image_format, const std::string& what);

/// A single-channel uint8 HxW (or HxWx1) array or a path (read as grey 8-bit), e.g. a trimap.
cv::Mat gray8_in(py::handle obj, const std::string& what);

/// An alpha matte as CV_64F in [0, 1]: uint8 / 255, uint16 / 65535, float32/64 as they are
/// (must be finite), or a path (metrics::read_alpha). HxW or HxWx1.
cv::Mat alpha_in(py::handle obj, const std::string& what);

/// A numpy array over the Mat's pixels, no copy: the array holds a reference to the Mat's buffer.
/// Shape HxW for one channel, HxWxC otherwise.
py::array to_numpy(const cv::Mat& m);

/// "shape (480, 640, 3) dtype float32" for error messages.
std::string describe_array(const py::array& a);

/// Registers semat.Error and its subclasses (defined in semat/_errors.py) as the Python side of
/// semat::Error and its kinds.
void register_errors(py::module_& m);

void bind_matte(py::module_& m);
void bind_metrics(py::module_& m);
void bind_sam(py::module_& m);

/// LibTorch's threads and allocator policy as the CLI sets them, once, before the first model
/// runs (no-op without LibTorch).
void ensure_runtime();

}  // namespace semat::python
