// semat.SamPredictor: models::SamPredictor with segment_anything's SamPredictor interface
// (set_image / predict names, arguments, return shapes and dtypes).
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <pybind11/stl.h>

#include "binding.h"
#include "semat/core/error.h"
#include "semat/core/geometry.h"
#ifdef SEMAT_WITH_MODELS
#include "semat/models/runtime.h"
#include "semat/models/sam_predictor.h"
#endif

namespace semat::python {

#ifdef SEMAT_WITH_MODELS

void ensure_runtime() {
  // As the CLI's main(): LibTorch's threads and allocator policy, once, before any model runs.
  static std::once_flag once;
  std::call_once(once, [] { models::configure_runtime(models::runtime_options_from_environment()); });
}

namespace {

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

DoubleArray doubles(py::handle obj, const char* what) {
  DoubleArray a = DoubleArray::ensure(obj);  // null (error cleared) when numpy cannot convert it
  SEMAT_CHECK(a, InvalidArgument, what << " must be a numeric array");
  return a;
}

// Copies C same-size CV_32F maps into a new float32 (C, H, W) array, or their `> 0` into a bool one.
py::array stack(const std::vector<cv::Mat>& maps, bool threshold) {
  const int rows = maps.empty() ? 0 : maps[0].rows, cols = maps.empty() ? 0 : maps[0].cols;
  const std::vector<py::ssize_t> shape = {static_cast<py::ssize_t>(maps.size()), rows, cols};
  if (threshold) {
    py::array_t<bool> out(shape);
    bool* dst = out.mutable_data();
    for (const cv::Mat& m : maps)
      for (int y = 0; y < rows; ++y) {
        const float* src = m.ptr<float>(y);
        for (int x = 0; x < cols; ++x) *dst++ = src[x] > 0.0f;  // mask_threshold 0.0, as SAM's
      }
    return out;
  }
  py::array_t<float> out(shape);
  float* dst = out.mutable_data();
  for (const cv::Mat& m : maps)
    for (int y = 0; y < rows; ++y, dst += cols) std::memcpy(dst, m.ptr<float>(y), cols * sizeof(float));
  return out;
}

class PySamPredictor {
 public:
  PySamPredictor(const std::string& checkpoint, const std::string& model_type, const std::string& device) {
    models::SamPredictor::Options o;
    o.model_type = model_type;
    o.device = device;
    py::gil_scoped_release unlocked;
    ensure_runtime();
    predictor_ = std::make_unique<models::SamPredictor>(checkpoint, o);
  }

  void set_image(py::handle image, const std::string& image_format) {
    ImageIn in = image_in(image, image_format, "image");
    py::gil_scoped_release unlocked;
    std::lock_guard<std::mutex> lock(mutex_);
    predictor_->set_image(in.mat, in.order);  // RGB pixels are read as they are
    image_set_ = true;
  }

  void reset_image() {
    std::lock_guard<std::mutex> lock(mutex_);
    image_set_ = false;
  }

  py::tuple predict(py::handle point_coords, py::handle point_labels, py::handle box, py::handle mask_input,
                    bool multimask_output, bool return_logits) {
    models::SamPrompt prompt;
    if (!point_coords.is_none()) {
      SEMAT_CHECK(!point_labels.is_none(), InvalidArgument,
                  "point_labels must be supplied if point_coords is supplied");
      const DoubleArray c = doubles(point_coords, "point_coords");
      const DoubleArray l = doubles(point_labels, "point_labels");
      SEMAT_CHECK(c.ndim() == 2 && c.shape(1) == 2, InvalidArgument,
                  "point_coords has " << describe_array(c) << "; it must be Nx2 (x, y) pixels");
      SEMAT_CHECK(l.ndim() == 1 && l.shape(0) == c.shape(0), InvalidArgument,
                  "point_labels has " << describe_array(l) << "; it must be (N,) with N = " << c.shape(0)
                                      << " (1 foreground, 0 background)");
      for (py::ssize_t i = 0; i < c.shape(0); ++i) {
        prompt.points.emplace_back(static_cast<float>(c.at(i, 0)), static_cast<float>(c.at(i, 1)));
        const double lab = l.at(i);
        SEMAT_CHECK(lab == 0 || lab == 1, InvalidArgument,
                    "point " << i + 1 << " has label " << lab << ": use 1 for foreground or 0 for background");
        prompt.labels.push_back(static_cast<int>(lab));
      }
    } else {
      SEMAT_CHECK(point_labels.is_none(), InvalidArgument, "point_labels given without point_coords");
    }
    if (!box.is_none()) {
      const DoubleArray b = doubles(box, "box");
      SEMAT_CHECK(b.size() == 4 && (b.ndim() == 1 || (b.ndim() == 2 && b.shape(0) == 1)), InvalidArgument,
                  "box has " << describe_array(b) << "; it must be (4,) x0, y0, x1, y1 pixels");
      const double* v = b.data();
      prompt.box = Box{v[0], v[1], v[2], v[3]};
    }
    if (!mask_input.is_none()) {
      py::array m = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(mask_input);
      SEMAT_CHECK(m && (m.ndim() == 2 || (m.ndim() == 3 && m.shape(0) == 1)), InvalidArgument,
                  "mask_input must be 1xHxW low-res logits (as low_res_masks[i][None] of an earlier predict)");
      const int h = static_cast<int>(m.shape(m.ndim() - 2)), w = static_cast<int>(m.shape(m.ndim() - 1));
      prompt.mask_input = cv::Mat(h, w, CV_32F, const_cast<void*>(m.data())).clone();
    }
    models::SamMasks r;
    {
      py::gil_scoped_release unlocked;
      std::lock_guard<std::mutex> lock(mutex_);
      SEMAT_CHECK(image_set_, StateError, "SamPredictor::predict: call set_image first");
      const auto t0 = std::chrono::steady_clock::now();
      r = predictor_->predict(prompt, multimask_output);
      last_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    py::array_t<float> iou(static_cast<py::ssize_t>(r.iou.size()));
    std::memcpy(iou.mutable_data(), r.iou.data(), r.iou.size() * sizeof(float));
    return py::make_tuple(stack(r.logits, !return_logits), iou, stack(r.low_res_logits, false));
  }

  py::array image_embedding() const {
    std::vector<io::TensorData> tensors;
    {
      py::gil_scoped_release unlocked;
      std::lock_guard<std::mutex> lock(mutex_);
      SEMAT_CHECK(image_set_, StateError, "SamPredictor::get_image_embedding: call set_image first");
      tensors = predictor_->image_tensors();
    }
    for (const auto& t : tensors)
      if (t.name == "image_embeddings") {
        std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
        py::array_t<float> out(shape);
        std::memcpy(out.mutable_data(), t.bytes.data(), t.bytes.size());
        return out;
      }
    throw Error("SamPredictor: the model reported no image embedding");
  }

  bool is_image_set() const { return image_set_; }
  py::object original_size() const {
    if (!image_set_) return py::none();
    const cv::Size s = predictor_->image_size();
    return py::make_tuple(s.height, s.width);
  }
  std::string model_type() const { return predictor_->config().name; }
  std::string device() const { return predictor_->device(); }
  int img_size() const { return static_cast<int>(predictor_->config().encoder.img_size); }

 private:
  std::unique_ptr<models::SamPredictor> predictor_;
  mutable std::mutex mutex_;  // set_image and predict of one predictor do not overlap
  bool image_set_ = false;

 public:
  double last_seconds_ = 0;  // the C++ predict of the last call, for the overhead figure
};

}  // namespace

void bind_sam(py::module_& m) {
  m.attr("_have_models") = true;
  py::class_<PySamPredictor>(m, "_SamPredictor")
      .def(py::init<const std::string&, const std::string&, const std::string&>(), py::arg("checkpoint"),
           py::arg("model_type") = "auto", py::arg("device") = "auto")
      .def("set_image", &PySamPredictor::set_image, py::arg("image"), py::arg("image_format") = "RGB")
      .def("reset_image", &PySamPredictor::reset_image)
      .def("predict", &PySamPredictor::predict, py::arg("point_coords") = py::none(),
           py::arg("point_labels") = py::none(), py::arg("box") = py::none(), py::arg("mask_input") = py::none(),
           py::arg("multimask_output") = true, py::arg("return_logits") = false)
      .def("get_image_embedding", &PySamPredictor::image_embedding)
      .def_property_readonly("is_image_set", &PySamPredictor::is_image_set)
      .def_property_readonly("original_size", &PySamPredictor::original_size)
      .def_property_readonly("model_type", &PySamPredictor::model_type)
      .def_property_readonly("device", &PySamPredictor::device)
      .def_property_readonly("img_size", &PySamPredictor::img_size)
      .def_readonly("_last_predict_seconds", &PySamPredictor::last_seconds_);
}

#else  // a build without LibTorch

void ensure_runtime() {}
void bind_sam(py::module_& m) { m.attr("_have_models") = false; }

#endif

}  // namespace semat::python
