#include "semat/train/train_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "semat/core/error.h"

namespace semat::train {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// One setter per key, so unknown keys and wrong types are reported with the key's full path.
using Setter = std::function<void(const json&, const std::string& key)>;

class Fields {
 public:
  explicit Fields(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw ConfigError(source_ + ": '" + key + "' " + what);
  }
  Setter number(double* out) {
    return [this, out](const json& v, const std::string& key) {
      if (!v.is_number()) fail(key, "must be a number, got " + std::string(v.type_name()));
      *out = v.get<double>();
    };
  }
  Setter integer(int64_t* out) {
    return [this, out](const json& v, const std::string& key) {
      if (!v.is_number_integer())
        fail(key, "must be an integer, got " + std::string(v.is_number() ? "a fraction" : v.type_name()));
      *out = v.get<int64_t>();
    };
  }
  Setter unsigned_integer(uint64_t* out) {
    return [this, out](const json& v, const std::string& key) {
      if (!v.is_number_unsigned())
        fail(key, "must be a non-negative integer, got " + std::string(v.type_name()));
      *out = v.get<uint64_t>();
    };
  }
  Setter boolean(bool* out) {
    return [this, out](const json& v, const std::string& key) {
      if (!v.is_boolean()) fail(key, "must be true or false, got " + std::string(v.type_name()));
      *out = v.get<bool>();
    };
  }
  Setter string(std::string* out) {
    return [this, out](const json& v, const std::string& key) {
      if (!v.is_string()) fail(key, "must be a string, got " + std::string(v.type_name()));
      *out = v.get<std::string>();
    };
  }
  void object(const json& obj, const std::string& prefix, const std::map<std::string, Setter>& keys) {
    const std::string where = prefix.empty() ? "the config" : "'" + prefix + "'";
    if (!obj.is_object())
      throw ConfigError(source_ + ": " + where + " must be a JSON object, got " + obj.type_name());
    for (const auto& [k, v] : obj.items()) {
      const std::string key = prefix.empty() ? k : prefix + "." + k;
      const auto it = keys.find(k);
      if (it == keys.end()) {
        std::string known;
        for (const auto& kv : keys) known += (known.empty() ? "" : ", ") + kv.first;
        fail(key, "is not a known key: remove it or use one of " + known);
      }
      it->second(v, key);
    }
  }

 private:
  std::string source_;
};

void check(bool ok, const std::string& field, const std::string& want) {
  if (!ok) throw ConfigError("train config: '" + field + "' " + want);
}

}  // namespace

void TrainConfig::validate() const {
  check(!model.empty(), "model",
        "must name a SEMat preset (semat-tiny, semat-vit-b/l/h, semat-hq-tiny, semat-hq-vit-b/l/h, "
        "semat-sam2-tiny, semat-sam2-hiera-t/s/b+/l)");
  check(backbone.empty() || backbone == "sam" || backbone == "hq-sam" || backbone == "sam2", "backbone",
        "must be sam, hq-sam or sam2 (or left out: the sam_checkpoint's)");
  check(device == "cpu" || device.rfind("cuda", 0) == 0, "device", "must be cpu or cuda[:N]");
  check(iterations >= 1, "iterations", "must be at least 1");
  check(batch_size >= 1, "batch_size", "must be at least 1");
  check(accumulate >= 1, "accumulate", "must be at least 1");
  check(std::isfinite(lr) && lr > 0, "lr", "must be a positive number");
  check(std::isfinite(weight_decay) && weight_decay >= 0, "weight_decay", "must be >= 0");
  check(warmup_iterations >= 0, "warmup_iterations", "must be >= 0");
  double last = 0;
  for (const auto& [at, factor] : lr_steps) {
    check(at > last && at < 1, "lr_steps", "fractions must increase strictly within (0, 1)");
    check(std::isfinite(factor) && factor > 0, "lr_steps", "factors must be positive");
    last = at;
  }
  check(std::isfinite(grad_clip) && grad_clip >= 0, "grad_clip", "must be >= 0 (0 = off)");
  check(checkpoint_every >= 1, "checkpoint_every", "must be at least 1");
  check(keep_checkpoints >= 0, "keep_checkpoints", "must be >= 0 (0 keeps all)");
  check(print_every >= 0, "print_every", "must be >= 0 (0 = quiet)");
  check(threads >= 0, "threads", "must be >= 0 (0 = default)");
  check(data.samples >= 0, "data.samples", "must be >= 0 (0 = a new scene every time)");
  check(data.size >= 64, "data.size", "must be at least 64 (the Laplacian pyramid needs it)");
  check(data.trimap_min_radius >= 1 && data.trimap_max_radius >= data.trimap_min_radius,
        "data.trimap_min_radius", "must be >= 1 and <= data.trimap_max_radius");
  check(data.box_jitter >= 0 && data.box_jitter < 1, "data.box_jitter", "must be in [0, 1)");
  check(amp == "off" || amp == "bf16", "amp", "must be \"off\" or \"bf16\"");
  check(plot_every >= 1, "plot_every", "must be at least 1");
  check(visual_every >= 0, "visual_every", "must be >= 0 (0 = no panels)");
  check(data.type == "synthetic" || data.type == "datasets", "data.type", "must be \"synthetic\" or \"datasets\"");
  check(data.type != "datasets" || !data.datasets.empty(), "data.datasets",
        "must list at least one dataset when data.type is \"datasets\"");
  check(data.workers >= 0, "data.workers", "must be >= 0 (0 = load on the training thread)");
  check(data.prefetch >= 1, "data.prefetch", "must be at least 1");
  check(eval.every >= 1, "eval.every", "must be at least 1");
  check(eval.max_images >= 0, "eval.max_images", "must be >= 0 (0 = all)");
  check(eval.resize == "cv2" || eval.resize == "torch" || eval.resize == "pil", "eval.resize",
        "must be \"cv2\" (official demo), \"torch\" (official evaluation loader) or \"pil\"");
  // The dataset specs are validated by semat::data::TrainingSet, which also reads the folders.
  try {
    loss.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("train config: 'loss': ") + e.what());
  }
  check(data.size >= (int64_t{2} << loss.matting.laplacian_levels), "loss.laplacian_levels",
        "must leave data.size >= 2^(levels + 1)");
}

double TrainConfig::lr_at(int64_t iter) const {
  double factor = 1.0;
  for (const auto& [at, f] : lr_steps)
    if (static_cast<double>(iter) >= at * static_cast<double>(iterations)) factor = f;
  // Linear warm-up from lr / warmup (never 0, so the first step already moves).
  if (iter < warmup_iterations)
    factor *= static_cast<double>(iter + 1) / static_cast<double>(warmup_iterations);
  return lr * factor;
}

TrainConfig parse_train_config(const std::string& json_text, const std::string& source,
                               const std::string& base_dir) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw ConfigError(source + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  TrainConfig c;
  std::string comment;
  Fields f(source);
  auto& l = c.loss;
  auto& d = c.data;
  const std::map<std::string, Setter> loss_keys = {
      {"unknown_l1_weight", f.number(&l.matting.unknown_l1_weight)},
      {"known_l1_weight", f.number(&l.matting.known_l1_weight)},
      {"gradient_weight", f.number(&l.matting.gradient_weight)},
      {"laplacian_weight", f.number(&l.matting.laplacian_weight)},
      {"gradient_lambda", f.number(&l.matting.gradient_lambda)},
      {"laplacian_levels", f.integer(&l.matting.laplacian_levels)},
      {"reg_weight", f.number(&l.reg_weight)},
      {"trimap_weight", f.number(&l.trimap_weight)},
      {"ghm_bins", f.integer(&l.ghm.bins)},
      {"ghm_momentum", f.number(&l.ghm.momentum)}};
  auto& a = d.augment;
  const std::map<std::string, Setter> augment_keys = {
      {"scale_min", f.number(&a.scale_min)},          {"scale_max", f.number(&a.scale_max)},
      {"flip", f.boolean(&a.flip)},                   {"color_jitter", f.boolean(&a.color_jitter)},
      {"two_fg_prob", f.number(&a.two_fg_prob)},
      {"square_resize_prob", f.number(&a.square_resize_prob)},
      {"square_side", f.integer(&a.square_side)},
      {"trimap_min_kernel", f.integer(&a.trimap_min_kernel)},
      {"trimap_max_kernel", f.integer(&a.trimap_max_kernel)}};
  bool datasets_given = false, type_given = false;
  const std::map<std::string, Setter> data_keys = {
      {"type",
       [&](const json& v, const std::string& key) {
         if (!v.is_string() || (v.get<std::string>() != "synthetic" && v.get<std::string>() != "datasets"))
           f.fail(key, "must be \"synthetic\" (generated scenes) or \"datasets\" (folders on disk)");
         d.type = v.get<std::string>();
         type_given = true;
       }},
      {"samples", f.integer(&d.samples)},
      {"size", f.integer(&d.size)},
      {"trimap_min_radius", f.integer(&d.trimap_min_radius)},
      {"trimap_max_radius", f.integer(&d.trimap_max_radius)},
      {"box_jitter", f.number(&d.box_jitter)},
      {"workers", f.integer(&d.workers)},
      {"prefetch", f.integer(&d.prefetch)},
      {"augment", [&](const json& v, const std::string& key) { f.object(v, key, augment_keys); }},
      {"datasets",
       [&](const json& v, const std::string& key) {
         if (!v.is_array()) f.fail(key, "must be a list of dataset objects");
         datasets_given = true;
         d.datasets.clear();
         for (size_t i = 0; i < v.size(); ++i) {
           data::DatasetSpec spec;
           int64_t panels = 0;
           const std::map<std::string, Setter> spec_keys = {
               {"type", f.string(&spec.type)},   {"name", f.string(&spec.name)},
               {"weight", f.number(&spec.weight)}, {"root", f.string(&spec.root)},
               {"images", f.string(&spec.images)}, {"min_score", f.number(&spec.min_score)},
               {"panels", f.integer(&panels)},   {"fg", f.string(&spec.fg)},
               {"alpha", f.string(&spec.alpha)}, {"bg", f.string(&spec.bg)}};
           f.object(v[i], key + "[" + std::to_string(i) + "]", spec_keys);
           spec.panels = static_cast<int>(panels);
           d.datasets.push_back(spec);
         }
       }}};
  auto& e = c.eval;
  const std::map<std::string, Setter> eval_keys = {
      {"folder", f.string(&e.folder)}, {"every", f.integer(&e.every)}, {"max_images", f.integer(&e.max_images)},
      {"resize", f.string(&e.resize)}, {"refine", f.boolean(&e.refine)}};
  const std::map<std::string, Setter> keys = {
      {"sam_checkpoint", f.string(&c.sam_checkpoint)},
      {"model", f.string(&c.model)},
      {"backbone", f.string(&c.backbone)},
      {"device", f.string(&c.device)},
      {"seed", f.unsigned_integer(&c.seed)},
      {"iterations", f.integer(&c.iterations)},
      {"batch_size", f.integer(&c.batch_size)},
      {"accumulate", f.integer(&c.accumulate)},
      {"lr", f.number(&c.lr)},
      {"weight_decay", f.number(&c.weight_decay)},
      {"warmup_iterations", f.integer(&c.warmup_iterations)},
      {"lr_steps",
       [&f, &c](const json& v, const std::string& key) {
         const std::string want = "must be a list of [fraction, factor] pairs, e.g. [[0.5, 0.5], [0.75, 0.2]]";
         if (!v.is_array()) f.fail(key, want);
         c.lr_steps.clear();
         for (const auto& p : v) {
           if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number())
             f.fail(key, want);
           c.lr_steps.emplace_back(p[0].get<double>(), p[1].get<double>());
         }
       }},
      {"grad_clip", f.number(&c.grad_clip)},
      {"checkpoint_every", f.integer(&c.checkpoint_every)},
      {"keep_checkpoints", f.integer(&c.keep_checkpoints)},
      {"print_every", f.integer(&c.print_every)},
      {"threads", f.integer(&c.threads)},
      {"amp", f.string(&c.amp)},
      {"checkpoint_activations", f.boolean(&c.checkpoint_activations)},
      {"plot_every", f.integer(&c.plot_every)},
      {"visual_every", f.integer(&c.visual_every)},
      {"eval", [&](const json& v, const std::string& key) { f.object(v, key, eval_keys); }},
      {"loss", [&](const json& v, const std::string& key) { f.object(v, key, loss_keys); }},
      {"data", [&](const json& v, const std::string& key) { f.object(v, key, data_keys); }},
      // Free text for the person who wrote the config.
      {"comment", f.string(&comment)}};
  f.object(doc, "", keys);
  // A datasets list alone means type "datasets" (the synthetic default would ignore it).
  if (datasets_given && !type_given) d.type = "datasets";
  auto resolve = [&base_dir](std::string* p) {
    if (!p->empty() && !base_dir.empty() && fs::path(*p).is_relative())
      *p = (fs::path(base_dir) / *p).lexically_normal().string();
  };
  resolve(&c.sam_checkpoint);
  resolve(&c.eval.folder);
  for (auto& spec : d.datasets)
    for (std::string* p : {&spec.root, &spec.images, &spec.fg, &spec.alpha, &spec.bg}) resolve(p);
  d.augment.size = d.size;
  d.augment.box_jitter = d.box_jitter;
  c.validate();
  return c;
}

TrainConfig load_train_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read train config '" + path + "': check the path");
  std::ostringstream os;
  os << in.rdbuf();
  // Absolute, so the copy stored in checkpoints still works from another working folder.
  const fs::path parent = fs::absolute(fs::path(path)).parent_path();
  return parse_train_config(os.str(), path, parent.string());
}

std::string train_config_json(const TrainConfig& c) {
  json steps = json::array();
  for (const auto& [at, f] : c.lr_steps) steps.push_back({at, f});
  const auto& l = c.loss;
  const auto& d = c.data;
  json datasets = json::array();
  for (const auto& spec : d.datasets)
    datasets.push_back({{"type", spec.type}, {"name", spec.name}, {"weight", spec.weight}, {"root", spec.root},
                        {"images", spec.images}, {"min_score", spec.min_score}, {"panels", spec.panels},
                        {"fg", spec.fg}, {"alpha", spec.alpha}, {"bg", spec.bg}});
  const json j = {
      {"sam_checkpoint", c.sam_checkpoint}, {"model", c.model}, {"backbone", c.backbone},
      {"device", c.device},
      {"seed", c.seed}, {"iterations", c.iterations}, {"batch_size", c.batch_size},
      {"accumulate", c.accumulate}, {"lr", c.lr}, {"weight_decay", c.weight_decay},
      {"warmup_iterations", c.warmup_iterations}, {"lr_steps", steps}, {"grad_clip", c.grad_clip},
      {"checkpoint_every", c.checkpoint_every}, {"keep_checkpoints", c.keep_checkpoints},
      {"print_every", c.print_every}, {"threads", c.threads},
      {"loss",
       {{"unknown_l1_weight", l.matting.unknown_l1_weight}, {"known_l1_weight", l.matting.known_l1_weight},
        {"gradient_weight", l.matting.gradient_weight}, {"laplacian_weight", l.matting.laplacian_weight},
        {"gradient_lambda", l.matting.gradient_lambda}, {"laplacian_levels", l.matting.laplacian_levels},
        {"reg_weight", l.reg_weight}, {"trimap_weight", l.trimap_weight}, {"ghm_bins", l.ghm.bins},
        {"ghm_momentum", l.ghm.momentum}}},
      {"amp", c.amp}, {"checkpoint_activations", c.checkpoint_activations}, {"plot_every", c.plot_every}, {"visual_every", c.visual_every},
      {"eval",
       {{"folder", c.eval.folder}, {"every", c.eval.every}, {"max_images", c.eval.max_images},
        {"resize", c.eval.resize}, {"refine", c.eval.refine}}},
      {"data",
       {{"type", d.type}, {"samples", d.samples}, {"size", d.size},
        {"trimap_min_radius", d.trimap_min_radius}, {"trimap_max_radius", d.trimap_max_radius},
        {"box_jitter", d.box_jitter}, {"workers", d.workers}, {"prefetch", d.prefetch},
        {"augment",
         {{"scale_min", d.augment.scale_min}, {"scale_max", d.augment.scale_max}, {"flip", d.augment.flip},
          {"color_jitter", d.augment.color_jitter}, {"two_fg_prob", d.augment.two_fg_prob},
          {"square_resize_prob", d.augment.square_resize_prob}, {"square_side", d.augment.square_side},
          {"trimap_min_kernel", d.augment.trimap_min_kernel},
          {"trimap_max_kernel", d.augment.trimap_max_kernel}}},
        {"datasets", datasets}}}};
  return j.dump(2);
}

}  // namespace semat::train
