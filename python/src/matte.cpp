// semat.matte: the engine behind `semat matte`, on numpy images, with the same report and files.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <pybind11/stl.h>

#include "binding.h"
#include "semat/core/error.h"
#include "semat/core/geometry.h"
#include "semat/core/timer.h"
#include "semat/engine/engine.h"
#include "semat/io/files.h"
#include "semat/io/image_io.h"
#include "semat/matting/compose.h"
#include "semat/matting/trimap.h"

namespace fs = std::filesystem;

namespace semat::python {

namespace {

py::object json_to_py(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

// The Python API's `prior` and `precision` on an EngineSpec: the one place they meet the engine.
// precision: "auto" (bf16 where the hardware has native bf16 matrix units), "float32" or
// "bfloat16" (refused by the engine, ConfigError, where not native).
void apply_prior_and_precision(engine::EngineSpec& spec, const std::string& prior,
                               const std::string& precision) {
  SEMAT_CHECK(prior == "auto" || prior == "grabcut" || prior == "isnet", ConfigError,
              "prior='" << prior << "' is not one of 'auto', 'grabcut', 'isnet'");
  SEMAT_CHECK(precision == "auto" || precision == "float32" || precision == "bfloat16", ConfigError,
              "precision='" << precision << "' is not one of 'auto', 'float32', 'bfloat16'");
  // The CLI's --prior: "isnet" the learned prior (ConfigError naming `make models` when it is not
  // installed), "grabcut" the classical box pipeline, "auto" IS-Net when installed.
  spec.prior = prior;
  spec.precision = precision;
}

// Engines by configuration: a model is loaded once per process, not once per call. Engine::run is
// const and thread-safe, so callers share one.
std::shared_ptr<const engine::Engine> engine_for(const engine::EngineSpec& spec) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const engine::Engine>> cache;
  const nlohmann::json key = {spec.prior, spec.isnet, spec.vitmatte, spec.diffmatte, spec.mask,  spec.trimap, spec.alpha,      spec.refine,
                              spec.sam,   spec.semat,  spec.model_type, spec.device,
                              spec.resize, spec.batch, spec.precision};
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[key.dump()];
  if (!slot) slot = std::make_shared<const engine::Engine>(spec);
  return slot;
}

// One call of semat.matte: the image as the engine saw it, the results, the --json report.
struct Run {
  cv::Mat image;        // CV_8UC3 in `order` (may view the caller's array, held by `keep`)
  ChannelOrder order = ChannelOrder::kBGR;  // also the order of each result's foreground
  py::object keep;
  std::vector<matting::MatteResult> results;
  nlohmann::json report;
};

struct Matte {
  std::shared_ptr<Run> run;
  size_t index = 0;
  const matting::MatteResult& r() const { return run->results[index]; }
};

cv::Scalar swapped(const cv::Scalar& c) { return cv::Scalar(c[2], c[1], c[0]); }

// The background for a composite of a foreground in channel order `order` (matting::composite
// mixes channel by channel, so its colour and image must be in the foreground's order;
// Background::bgr then holds the colour in that order).
matting::Background background_in(py::handle obj, ChannelOrder order) {
  matting::Background bg;
  const bool rgb = order == ChannelOrder::kRGB;
  if (py::isinstance<py::str>(obj)) {
    const std::string text = obj.cast<std::string>();
    if (auto c = matting::parse_color(text)) {  // BGR
      bg.bgr = rgb ? swapped(*c) : *c;
      return bg;
    }
    std::error_code ec;
    SEMAT_CHECK(fs::is_regular_file(text, ec), InvalidArgument,
                "background '" << text
                               << "' is neither a colour (#RRGGBB, R,G,B or a name such as white) "
                                  "nor an existing image file");
  }
  if ((py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj)) && py::len(obj) == 3) {
    const auto v = obj.cast<std::vector<double>>();
    for (double x : v)
      SEMAT_CHECK(x >= 0 && x <= 255, InvalidArgument,
                  "background colour (R, G, B) needs values in 0..255, got " << x);
    const cv::Scalar given(v[0], v[1], v[2]);  // R, G, B
    bg.bgr = rgb ? given : swapped(given);
    return bg;
  }
  ImageIn in = image_in(obj, "RGB", "background");
  if (in.order != order)
    cv::cvtColor(in.mat, bg.image, cv::COLOR_BGR2RGB);  // (the swap, either way)
  else
    bg.image = in.keep.is_none() ? in.mat : in.mat.clone();  // compose may outlive the array
  return bg;
}

// A colour result of a run (channels in the run's order) in `want`: itself, or swapped (a copy).
cv::Mat in_order(const cv::Mat& m, ChannelOrder have, ChannelOrder want) {
  if (have == want) return m;
  cv::Mat out;
  cv::cvtColor(m, out, m.channels() == 4 ? cv::COLOR_BGRA2RGBA : cv::COLOR_BGR2RGB);
  return out;
}

nlohmann::json instance_json(const matting::MatteResult& r) {
  nlohmann::json inst = {{"omega", r.omega},
                         {"unknown_pixels", r.solve.unknown},
                         {"cg_iterations", r.solve.iterations},
                         {"relative_residual", r.solve.relative_residual},
                         {"seconds", r.seconds}};
  if (r.box) inst["box"] = {r.box->x0, r.box->y0, r.box->x1, r.box->y1};
  return inst;
}

std::vector<std::shared_ptr<Matte>> run_matte(py::handle image, const std::vector<std::vector<double>>& boxes,
                                              py::handle trimap, const std::string& prior,
                                              const std::string& sam, const std::string& semat_ckpt,
                                              bool refine, const std::string& precision,
                                              const std::string& device, const std::string& model_type,
                                              const std::string& image_format, const std::string& vitmatte,
                                              const std::string& diffmatte) {
  Timer total;
  SEMAT_CHECK(boxes.empty() || trimap.is_none(), ConfigError,
              "boxes and trimap cannot be combined: a trimap already says where the subject is");
  SEMAT_CHECK(!boxes.empty() || !trimap.is_none(), ConfigError,
              "give the subject with boxes=[x0, y0, x1, y1] (or a list of boxes) or with trimap=");
  engine::EngineSpec spec;
  spec.sam = sam;
  spec.semat = semat_ckpt;
  spec.vitmatte = vitmatte;
  spec.diffmatte = diffmatte;
  spec.refine = refine;
  spec.device = device;
  spec.model_type = model_type;
  apply_prior_and_precision(spec, prior, precision);
  // Cheap checks first, as the CLI: no model load or solve for a typo.
  const engine::Stages stages = engine::resolve(spec);
  SEMAT_CHECK(trimap.is_none() || stages.model.empty(), ConfigError,
              (spec.semat.empty() ? "sam=" : "semat=")
                  << " needs at least one box (with a trimap no model is run)");
  std::vector<Box> parsed;
  for (size_t i = 0; i < boxes.size(); ++i) {
    const std::string what = "box " + std::to_string(i + 1);
    SEMAT_CHECK(boxes[i].size() == 4, InvalidArgument,
                what << " has " << boxes[i].size() << " numbers; a box is [x0, y0, x1, y1]");
    const Box b{boxes[i][0], boxes[i][1], boxes[i][2], boxes[i][3]};
    // parse_box's checks (finite, positive area), on the box's text form.
    parsed.push_back(parse_box(b.str(), what));
  }
  auto run = std::make_shared<Run>();
  ImageIn in = image_in(image, image_format, "image");
  run->image = in.mat;
  run->order = in.order;
  run->keep = in.keep;
  const std::string name = in.path.empty() ? "image" : "'" + in.path + "'";
  for (size_t i = 0; i < parsed.size(); ++i)
    check_box_in_image(parsed[i], run->image.cols, run->image.rows,
                       "box " + std::to_string(i + 1) + " of " + name);
  std::vector<engine::Prompt> prompts;
  if (!trimap.is_none()) {
    const cv::Mat grey = gray8_in(trimap, "trimap");
    SEMAT_CHECK(grey.size() == run->image.size(), DataError,
                "trimap is " << grey.cols << "x" << grey.rows << " but " << name << " is "
                             << run->image.cols << "x" << run->image.rows
                             << ": they must have the same size");
    engine::Prompt p;
    p.trimap = matting::canonical_trimap(grey, "trimap");
    matting::check_trimap_usable(p.trimap, "trimap");
    prompts.push_back(p);
  }
  for (size_t i = 0; i < parsed.size(); ++i)
    prompts.push_back(engine::Prompt::from_box(parsed[i], "box " + std::to_string(i + 1)));
  {
    py::gil_scoped_release unlocked;  // model loading and the matte itself run without the GIL
    if (!stages.model.empty()) ensure_runtime();
    const auto eng = engine_for(spec);
    run->results = eng->run(run->image, prompts, "", run->order);
    run->report = {{"image", in.path.empty() ? nlohmann::json(nullptr) : nlohmann::json(in.path)},
                   {"engine", eng->description()},
                   {"model", eng->model_variant()},
                   {"precision", eng->precision()},
                   {"instances", nlohmann::json::array()}};
  }
  for (const auto& r : run->results) run->report["instances"].push_back(instance_json(r));
  run->report["seconds"] = total.seconds();
  std::vector<std::shared_ptr<Matte>> out;
  for (size_t i = 0; i < run->results.size(); ++i) out.push_back(std::make_shared<Matte>(Matte{run, i}));
  return out;
}

// The files `semat matte` writes, the same way (names with _i suffixes for several instances,
// all files atomically), and the report the CLI prints with --json.
py::object save(const std::vector<std::shared_ptr<Matte>>& mattes, const std::string& out,
                py::handle background, int alpha_depth) {
  SEMAT_CHECK(!mattes.empty(), InvalidArgument, "save: no mattes given");
  SEMAT_CHECK(alpha_depth == 8 || alpha_depth == 16, InvalidArgument,
              "alpha_depth=" << alpha_depth << " must be 8 or 16");
  const matting::Background bg = background_in(background, ChannelOrder::kBGR);  // PNGs are BGR
  nlohmann::json report = mattes[0]->run->report;
  report["instances"] = nlohmann::json::array();
  std::vector<std::string> paths;
  {
    py::gil_scoped_release unlocked;
    io::ensure_writable_dir(out);
    io::StagedFiles files;
    for (size_t i = 0; i < mattes.size(); ++i) {
      const matting::MatteResult& r = mattes[i]->r();
      const Run& run = *mattes[i]->run;
      const cv::Mat fg = in_order(r.foreground, run.order, ChannelOrder::kBGR);
      const std::string suffix = mattes.size() > 1 ? "_" + std::to_string(i) : "";
      auto path = [&](const char* stem) { return (fs::path(out) / (stem + suffix + ".png")).string(); };
      files.add(path("alpha"), io::encode_png(matting::quantize_alpha(r.alpha, alpha_depth)));
      files.add(path("cutout"), io::encode_png(matting::cutout(fg, r.alpha)));
      files.add(path("composite"), io::encode_png(matting::composite(fg, r.alpha, bg)));
      files.add(path("trimap"), io::encode_png(r.trimap));
      files.add(path("overlay"), io::encode_png(matting::overlay(in_order(run.image, run.order, ChannelOrder::kBGR),
                                                                 r.alpha, r.box)));
      report["instances"].push_back(instance_json(r));
    }
    files.commit();
    paths = files.paths();
  }
  report["out"] = out;
  report["files"] = paths;
  report["seconds"] = mattes[0]->run->report["seconds"];
  return json_to_py(report);
}

}  // namespace

void bind_matte(py::module_& m) {
  py::class_<Matte, std::shared_ptr<Matte>>(m, "Matte", R"doc(
One subject's matte, from semat.matte(). Arrays are views of the result (no copies) unless noted.

  alpha       float32 HxW in [0, 1]
  foreground  float32 HxWx3 RGB in [0, 1]: the subject's colours without the background (a view
              for an RGB image, a copy for a BGR one or a file)
  trimap      uint8 HxW: 0 background, 128 unknown, 255 foreground
  mask        uint8 HxW 0/255 coarse mask, or None when a trimap was given
  box         (x0, y0, x1, y1) or None
  report      the dict `semat matte --json` prints, without "out" and "files" (see save())
)doc")
      .def_property_readonly("alpha", [](const Matte& s) { return to_numpy(s.r().alpha); })
      .def_property_readonly("trimap", [](const Matte& s) { return to_numpy(s.r().trimap); })
      .def_property_readonly("mask",
                             [](const Matte& s) -> py::object {
                               if (s.r().mask.empty()) return py::none();  // a trimap was given
                               return to_numpy(s.r().mask);
                             })
      .def_property_readonly("foreground",
                             [](const Matte& s) {
                               return to_numpy(in_order(s.r().foreground, s.run->order, ChannelOrder::kRGB));
                             })
      .def_property_readonly("box",
                             [](const Matte& s) -> py::object {
                               if (!s.r().box) return py::none();
                               const Box& b = *s.r().box;
                               return py::make_tuple(b.x0, b.y0, b.x1, b.y1);
                             })
      .def_property_readonly("omega", [](const Matte& s) { return s.r().omega; })
      .def_property_readonly("index", [](const Matte& s) { return s.index; })
      .def_property_readonly("report",
                             [](const Matte& s) {
                               py::dict d;
                               for (const char* k : {"image", "engine", "model", "precision", "instances", "seconds"})
                                 d[k] = json_to_py(s.run->report[k]);
                               return d;
                             })
      .def(
          "composite",
          [](const Matte& s, py::handle background) {
            const matting::Background bg = background_in(background, s.run->order);
            return to_numpy(in_order(matting::composite(s.r().foreground, s.r().alpha, bg), s.run->order,
                                     ChannelOrder::kRGB));
          },
          py::arg("background") = "#808080",
          "alpha F + (1 - alpha) B as uint8 HxWx3 RGB. background: a colour ('#RRGGBB', 'R,G,B', "
          "a name such as 'white', or an (R, G, B) tuple), an image file, or a uint8 RGB array "
          "(resized to cover the image and centre-cropped).")
      .def(
          "cutout",
          [](const Matte& s) {
            return to_numpy(in_order(matting::cutout(s.r().foreground, s.r().alpha), s.run->order, ChannelOrder::kRGB));
          },
          "uint8 HxWx4 RGBA: the foreground colours with alpha as the fourth channel.")
      .def("__repr__", [](const Matte& s) {
        std::string box = s.r().box ? s.r().box->str() : "trimap";
        return "<semat.Matte " + std::to_string(s.r().alpha.cols) + "x" + std::to_string(s.r().alpha.rows) +
               " " + box + " engine " + s.run->report["engine"].get<std::string>() + ">";
      });

  m.def("_matte", &run_matte, py::arg("image"), py::arg("boxes"), py::arg("trimap"), py::arg("prior"),
        py::arg("sam"), py::arg("semat"), py::arg("refine"), py::arg("precision"), py::arg("device"),
        py::arg("model_type"), py::arg("image_format"), py::arg("vitmatte"), py::arg("diffmatte"));
  m.def("_save", &save, py::arg("mattes"), py::arg("out"), py::arg("background"), py::arg("alpha_depth"));
  m.def(
      "_image_copies",
      [](py::handle image, const std::string& image_format) {
        ImageIn in = image_in(image, image_format, "image");
        return py::make_tuple(in.copies, in.shares_input, std::string(channel_order_name(in.order)));
      },
      py::arg("image"), py::arg("image_format") = "RGB",
      "Test hook: (pixel copies made on the way into the library, whether the library reads the "
      "caller's buffer itself, the channel order it reads: 'RGB' or 'BGR').");
}

}  // namespace semat::python
