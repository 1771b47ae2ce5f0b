// semat.metrics and semat.eval: the metrics module's scores and `semat eval --json`'s report.
#include <string>

#include <nlohmann/json.hpp>
#include <pybind11/stl.h>

#include "binding.h"
#include "semat/core/error.h"
#include "semat/core/timer.h"
#include "semat/metrics/datasets.h"
#include "semat/metrics/evaluate.h"
#include "semat/metrics/protocol.h"

namespace semat::python {

namespace {

nlohmann::json scores_json(const metrics::Scores& s) {
  return {{"sad", s.sad}, {"mse", s.mse}, {"mad", s.mad}, {"grad", s.grad}, {"conn", s.conn}};
}

py::object json_to_py(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

py::dict scores(py::handle pred, py::handle gt, py::handle trimap, const std::string& protocol_name) {
  const metrics::Protocol protocol = metrics::parse_protocol(protocol_name);
  const cv::Mat p = alpha_in(pred, "pred"), g = alpha_in(gt, "gt");
  metrics::Scores s;
  if (protocol == metrics::Protocol::kDim) {
    SEMAT_CHECK(!trimap.is_none(), ConfigError,
                "protocol='dim' scores the trimap's unknown region: give trimap= (uint8, 128 = unknown)");
    const cv::Mat t = gray8_in(trimap, "trimap");
    SEMAT_CHECK(p.size() == g.size() && t.size() == g.size(), InvalidArgument,
                "pred is " << p.cols << "x" << p.rows << ", gt " << g.cols << "x" << g.rows << ", trimap "
                           << t.cols << "x" << t.rows << ": protocol 'dim' needs one size");
    py::gil_scoped_release unlocked;
    s = metrics::score_dim(p, g, t, "pred");
  } else {
    SEMAT_CHECK(trimap.is_none(), ConfigError,
                "protocol='semat' scores the whole image: trimap= is only used by protocol='dim'");
    py::gil_scoped_release unlocked;
    s = metrics::score_semat(p, g);  // pred is resized to gt's evaluation size, as in SEMat's evaluator
  }
  return json_to_py(scores_json(s));
}

// Mirrors apps/semat/cmd_eval.cpp run_eval (its --json branch): same checks, same report.
py::object evaluate(const std::string& pred, const std::string& gt, const std::string& trimap,
                    const std::string& protocol_name, bool allow_missing, int threads,
                    const std::string& dataset, const std::string& root) {
  Timer timer;
  const metrics::Protocol protocol = metrics::parse_protocol(protocol_name);
  SEMAT_CHECK(dataset.empty() != gt.empty(), ConfigError,
              "give the ground truth either with gt_dir or with dataset= and root= (not both)");
  SEMAT_CHECK(dataset.empty() == root.empty(), ConfigError, "dataset= and root= go together");
  nlohmann::json j;
  {
    py::gil_scoped_release unlocked;
    metrics::DatasetLayout layout;
    std::vector<metrics::GtItem> items;
    if (!dataset.empty()) {
      layout = metrics::dataset_layout(dataset, root);
      items = layout.items;
    } else {
      items = metrics::gt_items_from_dir(gt, "gt_dir");
    }
    metrics::EvalOptions opt;
    opt.protocol = protocol;
    opt.pred_dir = pred;
    opt.trimap_dir = trimap;
    opt.allow_missing = allow_missing;
    opt.threads = threads;
    const metrics::EvalReport r = metrics::evaluate(items, opt);
    j = {{"protocol", metrics::protocol_name(r.protocol)},
         {"count", r.images.size()},
         {"mean", scores_json(r.mean)},
         {"images", nlohmann::json::array()},
         {"skipped",
          {{"missing_predictions", r.missing_predictions},
           {"missing_trimaps", r.missing_trimaps},
           {"unmatched_predictions", r.unmatched_predictions}}},
         {"gt_dir", layout.gt_dir.empty() ? gt : layout.gt_dir},
         {"seconds", timer.seconds()}};
    if (!dataset.empty()) j["dataset"] = dataset;
    for (const metrics::ImageResult& im : r.images) {
      nlohmann::json e = scores_json(im.scores);
      e["name"] = im.name;
      e["pred"] = im.pred;
      e["gt"] = im.gt;
      if (!im.trimap.empty()) e["trimap"] = im.trimap;
      j["images"].push_back(e);
    }
  }
  return json_to_py(j);
}

}  // namespace

void bind_metrics(py::module_& m) {
  m.def("_scores", &scores, py::arg("pred"), py::arg("gt"), py::arg("trimap"), py::arg("protocol"));
  m.def("_eval", &evaluate, py::arg("pred_dir"), py::arg("gt_dir"), py::arg("trimap_dir"), py::arg("protocol"),
        py::arg("allow_missing"), py::arg("threads"), py::arg("dataset"), py::arg("root"));
}

}  // namespace semat::python
