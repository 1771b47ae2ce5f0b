// semat eval --pred DIR (--gt DIR | --dataset NAME --root DIR) [--trimap DIR]
//            [--protocol semat|dim] [--json] [--csv FILE] [--allow-missing] [--threads N]
// semat eval-instances --pred DIR --gt DIR [--iou 0.5,0.75] [--json] [--allow-missing]
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "semat/core/error.h"
#include "semat/core/timer.h"
#include "semat/io/files.h"
#include "semat/metrics/datasets.h"
#include "semat/metrics/evaluate.h"
#include "semat/metrics/imq.h"

namespace semat::cli {
namespace {

struct EvalArgs {
  std::string pred, gt, trimap, protocol = "semat", csv, dataset, root;
  bool json = false, allow_missing = false;
  int threads = 0;
};

struct InstanceArgs {
  std::string pred, gt, iou = "0.5,0.75";
  bool json = false, allow_missing = false;
  int threads = 0;
};

nlohmann::json scores_json(const metrics::Scores& s) {
  return {{"sad", s.sad}, {"mse", s.mse}, {"mad", s.mad}, {"grad", s.grad}, {"conn", s.conn}};
}

// RFC 4180: quote a field only when it needs it.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void write_csv(const std::string& path, const metrics::EvalReport& r) {
  std::ostringstream os;
  os << std::setprecision(17) << "name,sad,mse,mad,grad,conn,pred,gt\n";
  for (const metrics::ImageResult& im : r.images)
    os << csv_field(im.name) << ',' << im.scores.sad << ',' << im.scores.mse << ',' << im.scores.mad << ','
       << im.scores.grad << ',' << im.scores.conn << ',' << csv_field(im.pred) << ',' << csv_field(im.gt) << '\n';
  const std::string text = os.str();
  io::write_file_atomic(path, std::vector<std::uint8_t>(text.begin(), text.end()));
}

void run_eval(const EvalArgs& a) {
  Timer timer;
  const metrics::Protocol protocol = metrics::parse_protocol(a.protocol);
  SEMAT_CHECK(a.dataset.empty() != a.gt.empty(), ConfigError,
              "give the ground truth either with --gt DIR or with --dataset NAME --root DIR (not both)");
  SEMAT_CHECK(a.dataset.empty() == a.root.empty(), ConfigError,
              "--dataset and --root go together: --dataset NAME --root DIR");
  metrics::DatasetLayout layout;
  std::vector<metrics::GtItem> items;
  if (!a.dataset.empty()) {
    layout = metrics::dataset_layout(a.dataset, a.root);
    items = layout.items;
  } else {
    items = metrics::gt_items_from_dir(a.gt, "--gt");
  }
  metrics::EvalOptions opt;
  opt.protocol = protocol;
  opt.pred_dir = a.pred;
  opt.trimap_dir = a.trimap;
  opt.allow_missing = a.allow_missing;
  opt.threads = a.threads;
  const metrics::EvalReport r = metrics::evaluate(items, opt);
  if (!a.csv.empty()) write_csv(a.csv, r);

  if (a.json) {
    nlohmann::json j = {{"protocol", metrics::protocol_name(r.protocol)},
                        {"count", r.images.size()},
                        {"mean", scores_json(r.mean)},
                        {"images", nlohmann::json::array()},
                        {"skipped",
                         {{"missing_predictions", r.missing_predictions},
                          {"missing_trimaps", r.missing_trimaps},
                          {"unmatched_predictions", r.unmatched_predictions}}},
                        {"gt_dir", layout.gt_dir.empty() ? a.gt : layout.gt_dir},
                        {"seconds", timer.seconds()}};
    if (!a.dataset.empty()) j["dataset"] = a.dataset;
    for (const metrics::ImageResult& im : r.images) {
      nlohmann::json e = scores_json(im.scores);
      e["name"] = im.name;
      e["pred"] = im.pred;
      e["gt"] = im.gt;
      if (!im.trimap.empty()) e["trimap"] = im.trimap;
      j["images"].push_back(e);
    }
    std::cout << j.dump() << '\n';
    return;
  }
  if (!a.dataset.empty()) {
    std::cout << "dataset " << a.dataset << ": " << items.size() << " ground truths from " << layout.gt_dir;
    if (!layout.image_dir.empty()) std::cout << " (one per image in " << layout.image_dir << ")";
    std::cout << '\n';
  }
  std::cout << "protocol " << metrics::protocol_name(r.protocol) << ", " << r.images.size() << " images";
  const size_t skipped = r.missing_predictions.size() + r.missing_trimaps.size();
  if (skipped) std::cout << ", " << skipped << " skipped (" << r.missing_predictions.size() << " without prediction, "
                         << r.missing_trimaps.size() << " without trimap)";
  if (!r.unmatched_predictions.empty())
    std::cout << ", " << r.unmatched_predictions.size() << " predictions without ground truth ignored";
  std::cout << ", " << fixed(timer.seconds(), 2) << " s\n";
  std::cout << std::setw(10) << "SAD" << std::setw(12) << "MSE(x1e3)" << std::setw(12) << "MAD(x1e3)"
            << std::setw(10) << "Grad" << std::setw(10) << "Conn" << '\n';
  std::cout << std::setw(10) << fixed(r.mean.sad, 2) << std::setw(12) << fixed(r.mean.mse * 1e3, 2)
            << std::setw(12) << fixed(r.mean.mad * 1e3, 2) << std::setw(10) << fixed(r.mean.grad, 2)
            << std::setw(10) << fixed(r.mean.conn, 2) << '\n';
  if (!a.csv.empty()) std::cout << "per-image scores: " << a.csv << '\n';
}

std::vector<double> parse_thresholds(const std::string& spec) {
  std::vector<double> out;
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    SEMAT_CHECK(used > 0 && used == item.size() && v > 0 && v <= 1, ConfigError,
                "--iou '" << spec << "': '" << item << "' is not a threshold in (0, 1]; use e.g. --iou 0.5,0.75");
    out.push_back(v);
  }
  SEMAT_CHECK(!out.empty(), ConfigError, "--iou is empty; use e.g. --iou 0.5,0.75");
  return out;
}

void run_eval_instances(const InstanceArgs& a) {
  Timer timer;
  metrics::InstanceEvalOptions opt;
  opt.pred_dir = a.pred;
  opt.gt_dir = a.gt;
  opt.thresholds = parse_thresholds(a.iou);
  opt.allow_missing = a.allow_missing;
  opt.threads = a.threads;
  const metrics::InstanceEvalReport r = metrics::evaluate_instances(opt);
  if (a.json) {
    nlohmann::json j = {{"images", r.images},
                        {"gt_instances", r.gt_instances},
                        {"pred_instances", r.pred_instances},
                        {"missing_predictions", r.missing_predictions},
                        {"unmatched_predictions", r.unmatched_predictions},
                        {"thresholds", nlohmann::json::array()},
                        {"seconds", timer.seconds()}};
    for (const metrics::ImqScores& s : r.scores)
      j["thresholds"].push_back({{"iou_threshold", s.threshold},
                                 {"tp", s.tp},
                                 {"fp", s.fp},
                                 {"fn", s.fn},
                                 {"imq_mad", s.imq_mad},
                                 {"imq_mse", s.imq_mse},
                                 {"imq_grad", s.imq_grad},
                                 {"imq_conn", s.imq_conn},
                                 {"iou", s.iou}});
    std::cout << j.dump() << '\n';
    return;
  }
  std::cout << r.images << " images, " << r.gt_instances << " GT / " << r.pred_instances << " predicted instances";
  if (!r.missing_predictions.empty())
    std::cout << ", " << r.missing_predictions.size() << " images without predictions (all misses)";
  if (!r.unmatched_predictions.empty())
    std::cout << ", " << r.unmatched_predictions.size() << " prediction folders without ground truth ignored";
  std::cout << ", " << fixed(timer.seconds(), 2) << " s\n";
  std::cout << std::setw(6) << "IoU>=" << std::setw(7) << "TP" << std::setw(7) << "FP" << std::setw(7) << "FN"
            << std::setw(10) << "IMQ_mad" << std::setw(10) << "IMQ_mse" << std::setw(10) << "IMQ_grad"
            << std::setw(10) << "IMQ_conn" << std::setw(8) << "IoU" << '\n';
  for (const metrics::ImqScores& s : r.scores)
    std::cout << std::setw(6) << fixed(s.threshold, 2) << std::setw(7) << s.tp << std::setw(7) << s.fp
              << std::setw(7) << s.fn << std::setw(10) << fixed(100 * s.imq_mad, 2) << std::setw(10)
              << fixed(100 * s.imq_mse, 2) << std::setw(10) << fixed(100 * s.imq_grad, 2) << std::setw(10)
              << fixed(100 * s.imq_conn, 2) << std::setw(8) << fixed(100 * s.iou, 2) << '\n';
}

}  // namespace

void register_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "SAD, MSE, MAD, Grad and Conn of predicted mattes against ground truth (matched by file stem)");
  cmd->add_option("--pred", args->pred, "folder of predicted alpha mattes")->required();
  cmd->add_option("--gt", args->gt, "folder of ground-truth alpha mattes");
  cmd->add_option("--trimap", args->trimap, "folder of trimaps (protocol dim: unknown = 128)");
  cmd->add_option("--protocol", args->protocol,
                  "semat: whole image at long side 1024 (SEMat's evaluator); dim: trimap unknown "
                  "region at the original size (Composition-1k)")
      ->check(CLI::IsMember({"semat", "dim"}))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print one JSON object (raw values) instead of the table");
  cmd->add_option("--csv", args->csv, "write per-image raw scores to this CSV file");
  cmd->add_flag("--allow-missing", args->allow_missing,
                "skip ground truths without a prediction and ignore predictions without ground truth");
  cmd->add_option("--dataset", args->dataset,
                  "benchmark layout under --root: p3m500np, aim500, rw100, am2k, rwp636 or sim");
  cmd->add_option("--root", args->root, "data root holding the --dataset folder");
  cmd->add_option("--threads", args->threads, "worker threads (0 = all cores)")->capture_default_str();
  cmd->callback([args] { run_eval(*args); });

  auto inst = std::make_shared<InstanceArgs>();
  CLI::App* icmd = app.add_subcommand(
      "eval-instances", "IMQ (instance matting quality) on the HIM2K layout: DIR/<image>/<instance>.png");
  icmd->add_option("--pred", inst->pred, "folder of predicted instance folders")->required();
  icmd->add_option("--gt", inst->gt, "folder of ground-truth instance folders")->required();
  icmd->add_option("--iou", inst->iou, "IoU thresholds for a true positive, comma-separated")
      ->capture_default_str();
  icmd->add_flag("--json", inst->json, "print one JSON object (IMQ in [0, 1]) instead of the table");
  icmd->add_flag("--allow-missing", inst->allow_missing,
                 "count images without predictions as misses and ignore extra prediction folders");
  icmd->add_option("--threads", inst->threads, "worker threads (0 = all cores)")->capture_default_str();
  icmd->callback([inst] { run_eval_instances(*inst); });
}

}  // namespace semat::cli
