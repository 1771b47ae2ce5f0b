#include "semat/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "sam/build.h"
#include "semat/build.h"
#include "semat/core/error.h"
#include "semat/io/files.h"
#include "semat/losses/criterion.h"
#include "semat/semat_model.h"
#include "semat/train/synthetic_data.h"

namespace semat::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kWeights = "weights.safetensors";
constexpr const char* kOptimizer = "optimizer.pt";
constexpr const char* kState = "state.json";

uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::vector<uint8_t> to_bytes(const std::string& s) { return {s.begin(), s.end()}; }

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError("cannot read '" + p.string() + "': the checkpoint is incomplete");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string iter_name(int64_t iter) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "iter_%08lld", static_cast<long long>(iter));
  return buf;
}

losses::LossConfig loss_config(const LossWeights& w) {
  losses::LossConfig c;
  c.matting.unknown_l1_weight = w.unknown_l1;
  c.matting.known_l1_weight = w.known_l1;
  c.matting.gradient_weight = w.gradient;
  c.matting.laplacian_weight = w.laplacian;
  c.matting.gradient_lambda = w.gradient_lambda;
  c.matting.laplacian_levels = w.laplacian_levels;
  c.reg_weight = w.reg;
  c.trimap_weight = w.trimap;
  c.ghm.bins = w.ghm_bins;
  c.ghm.momentum = w.ghm_momentum;
  return c;
}

std::string format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(std::max(0.0, s));
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

}  // namespace

std::string resolve_checkpoint_dir(const std::string& dir) {
  const fs::path d(dir);
  if (fs::exists(d / kState)) return d.string();
  const fs::path latest = d / "checkpoints" / "latest";
  if (fs::exists(latest)) {
    std::string name = read_text(latest);
    name.erase(std::remove_if(name.begin(), name.end(), [](char c) { return std::isspace(c); }), name.end());
    const fs::path ck = d / "checkpoints" / name;
    if (fs::exists(ck / kState)) return ck.string();
  }
  throw IoError("--resume '" + dir + "': no checkpoint there (give a run folder with checkpoints/latest or a "
                "checkpoints/iter_N folder)");
}

struct Trainer::Impl {
  TrainConfig cfg;
  TrainOptions opts;
  torch::Device device{torch::kCPU};
  matting_model::SematModel model{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<losses::Criterion> criterion;
  std::unique_ptr<SyntheticDataset> data;
  // What checkpoints hold: the trainable parameters and the matting decoder's BatchNorm
  // statistics (buffers, trained by the forward pass rather than the optimizer).
  std::vector<std::pair<std::string, torch::Tensor>> trained;
  int64_t done = 0;  // completed iterations

  void build() {
    if (cfg.threads > 0) {
      torch::set_num_threads(static_cast<int>(cfg.threads));
    } else {
      sam::use_all_cores();  // LibTorch alone would use one thread per physical core
    }
    device = torch::Device(cfg.device);
    SEMAT_CHECK(!device.is_cuda() || torch::cuda::is_available(), ConfigError,
                "train config: 'device' is " << cfg.device << " but CUDA is not available: use cpu");
    // SEMat's new parts start from torch's default initialisers: seed them.
    torch::manual_seed(cfg.seed);
    if (!cfg.sam_checkpoint.empty()) {
      model = matting_model::build_semat_from_sam(io::load_checkpoint(cfg.sam_checkpoint), true);
    } else {
      model = matting_model::SematModel(models::semat_preset(cfg.model), true);
    }
    const int64_t S = model->cfg.sam.encoder.img_size;
    SEMAT_CHECK(cfg.data.size <= S, ConfigError,
                "train config: 'data.size' " << cfg.data.size << " exceeds the model's input size " << S
                                             << ": use at most " << S);
    model->set_trainable();
    model->to(device);
    model->train();
    std::vector<torch::Tensor> params;
    for (auto& p : model->named_parameters(true)) {
      if (!p.value().requires_grad()) continue;
      trained.emplace_back(p.key(), p.value());
      params.push_back(p.value());
    }
    for (auto& b : model->named_buffers(true)) {
      if (b.key().rfind("matting_decoder.", 0) == 0 || b.key().rfind("condition_layer.", 0) == 0)
        trained.emplace_back(b.key(), b.value());
    }
    optimizer = std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
    criterion = std::make_unique<losses::Criterion>(loss_config(cfg.loss));
    data = std::make_unique<SyntheticDataset>(cfg.data, cfg.seed);
  }

  void resume(const std::string& arg) {
    const fs::path dir = resolve_checkpoint_dir(arg);
    const json state = json::parse(read_text(dir / kState));
    const io::Checkpoint weights = io::load_checkpoint((dir / kWeights).string());
    std::map<std::string, const io::TensorData*> by_name;
    for (const auto& t : weights.tensors) by_name[t.name] = &t;
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : trained) {
      const auto it = by_name.find(name);
      SEMAT_CHECK(it != by_name.end(), CheckpointError,
                  "'" << weights.source << "' lacks '" << name
                      << "': resume with the config that wrote it (same model)");
      const torch::Tensor v = sam::from_tensor_data(*it->second);
      SEMAT_CHECK(v.sizes() == t.sizes(), CheckpointError,
                  "'" << weights.source << "': '" << name << "' has shape " << v.sizes() << ", the model "
                      << t.sizes() << ": resume with the config that wrote it");
      t.copy_(v);
    }
    std::istringstream is(read_text(dir / kOptimizer));
    torch::serialize::InputArchive ar;
    ar.load_from(is, device);
    optimizer->load(ar);
    const auto acc = state.at("ghm_accumulators").get<std::vector<double>>();
    criterion->ghm().set_accumulators(torch::tensor(acc, torch::kDouble));
    done = state.at("iteration").get<int64_t>();
    SEMAT_CHECK(done <= cfg.iterations, ConfigError,
                "the checkpoint is at iteration " << done << ", past 'iterations' " << cfg.iterations
                                                  << ": raise iterations to continue");
  }

  // Batch of the `step`-th forward pass (accumulation steps count separately).
  void batch(int64_t step, torch::Tensor* images, torch::Tensor* boxes, torch::Tensor* alpha,
             torch::Tensor* trimap) {
    const int64_t B = cfg.batch_size, s = cfg.data.size, S = model->cfg.sam.encoder.img_size;
    std::vector<torch::Tensor> im, al, tr;
    std::vector<float> bx;
    for (int64_t j = 0; j < B; ++j) {
      const Sample smp = data->get(step * B + j);
      im.push_back(torch::from_blob(smp.image.data, {s, s, 3}, torch::kByte).permute({2, 0, 1}).to(torch::kFloat) /
                   255.0);
      al.push_back(torch::from_blob(smp.alpha.data, {1, s, s}, torch::kFloat).clone());
      tr.push_back(torch::from_blob(smp.trimap.data, {1, s, s}, torch::kFloat).clone());
      for (double v : smp.box) bx.push_back(static_cast<float>(v));
    }
    // Zero padding to the model's square input, as at inference (padding is background).
    namespace F = torch::nn::functional;
    const auto pad = F::PadFuncOptions({0, S - s, 0, S - s});
    *images = model->normalize(F::pad(torch::stack(im), pad)).to(device);
    *alpha = F::pad(torch::stack(al), pad).to(device);
    *trimap = F::pad(torch::stack(tr), pad).to(device);
    *boxes = torch::tensor(bx).view({B, 4}).to(device);
  }

  // One optimizer step; returns the averaged loss components.
  std::vector<std::pair<std::string, double>> step(int64_t it, double lr) {
    torch::manual_seed(mix(cfg.seed ^ mix(static_cast<uint64_t>(it))));
    for (auto& g : optimizer->param_groups())
      static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    optimizer->zero_grad();
    std::vector<std::pair<std::string, double>> sums;
    for (int64_t a = 0; a < cfg.accumulate; ++a) {
      torch::Tensor images, boxes, alpha, trimap;
      batch(it * cfg.accumulate + a, &images, &boxes, &alpha, &trimap);
      const matting_model::SematOutput out = model->forward(images, boxes);
      torch::Tensor frozen;
      {
        torch::NoGradGuard no_grad;
        frozen = model->frozen_sam_logits(images, boxes);
      }
      losses::LossInputs in;
      in.alpha = out.alpha;
      in.alpha_gt = alpha;
      in.trimap = trimap;
      in.sam_logits = out.sam_logits;
      in.frozen_sam_logits = frozen;
      in.trimap_logits = out.matting_logits;
      const losses::LossTerms terms = (*criterion)(in);
      (terms.total / static_cast<double>(cfg.accumulate)).backward();
      const auto sc = terms.scalars();
      if (sums.empty()) sums.assign(sc.size(), {"", 0.0});
      for (size_t i = 0; i < sc.size(); ++i) {
        sums[i].first = sc[i].first;
        sums[i].second += sc[i].second / static_cast<double>(cfg.accumulate);
      }
    }
    if (cfg.grad_clip > 0) {
      std::vector<torch::Tensor> params;
      for (auto& g : optimizer->param_groups())
        for (auto& p : g.params()) params.push_back(p);
      torch::nn::utils::clip_grad_norm_(params, cfg.grad_clip);
    }
    optimizer->step();
    return sums;
  }

  std::vector<io::TensorData> trained_data() const {
    std::vector<io::TensorData> out;
    for (const auto& [name, t] : trained) out.push_back(sam::to_tensor_data(name, t.detach().to(torch::kCPU)));
    return out;
  }

  // Assembled in a hidden folder and renamed into place, then `latest` is switched: a crash at
  // any point leaves the previous checkpoint and `latest` intact.
  std::string save_checkpoint() {
    const fs::path root = fs::path(opts.out_dir) / "checkpoints";
    fs::create_directories(root);
    const std::string name = iter_name(done);
    const fs::path final_dir = root / name, tmp = root / ("." + name + ".tmp");
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
      io::save_safetensors((tmp / kWeights).string(), trained_data(),
                           {{"format", "semat-train"}, {"model", model->cfg.name},
                            {"iteration", std::to_string(done)}});
      torch::serialize::OutputArchive ar;
      optimizer->save(ar);
      std::ostringstream os;
      ar.save_to(os);
      io::write_file_atomic((tmp / kOptimizer).string(), to_bytes(os.str()));
      const at::Tensor acc = criterion->ghm().accumulators().contiguous();
      const std::vector<double> accv(acc.data_ptr<double>(), acc.data_ptr<double>() + acc.numel());
      const json state = {{"iteration", done},
                          {"seed", cfg.seed},
                          {"lr", cfg.lr_at(done > 0 ? done - 1 : 0)},
                          {"ghm_accumulators", accv},
                          {"config", json::parse(train_config_json(cfg))}};
      io::write_file_atomic((tmp / kState).string(), to_bytes(state.dump(2)));
      fs::remove_all(final_dir);
      fs::rename(tmp, final_dir);
      io::write_file_atomic((root / "latest").string(), to_bytes(name + "\n"));
    } catch (const fs::filesystem_error& e) {
      fs::remove_all(tmp);
      throw IoError("cannot write checkpoint '" + final_dir.string() + "': " + e.what() +
                    " (free disk space; the previous checkpoint is intact)");
    } catch (...) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      throw;
    }
    prune(root);
    return final_dir.string();
  }

  void prune(const fs::path& root) {
    if (cfg.keep_checkpoints <= 0) return;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(root)) {
      const std::string n = e.path().filename().string();
      if (e.is_directory() && n.rfind("iter_", 0) == 0) names.push_back(n);
    }
    std::sort(names.begin(), names.end());  // zero-padded: lexical = numeric
    for (size_t i = 0; i + static_cast<size_t>(cfg.keep_checkpoints) < names.size(); ++i) {
      std::error_code ec;
      fs::remove_all(root / names[i], ec);
    }
  }

  // Lines of a previous run past the resumed iteration would duplicate the ones about to be
  // written: keep only those up to `done`.
  void trim_log(const fs::path& log) {
    if (!fs::exists(log)) return;
    std::ifstream in(log);
    std::string line, kept;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("iter") || j["iter"].get<int64_t>() > done) continue;
      kept += line + "\n";
    }
    io::write_file_atomic(log.string(), to_bytes(kept));
  }

  TrainResult run() {
    io::ensure_writable_dir(opts.out_dir);
    const fs::path log_path = fs::path(opts.out_dir) / "log.jsonl";
    if (done > 0) {
      trim_log(log_path);
    } else {
      std::error_code ec;
      fs::remove(log_path, ec);
    }
    std::ofstream log(log_path, std::ios::app);
    if (!log) throw IoError("cannot write '" + log_path.string() + "': check the folder's permissions");
    TrainResult r;
    r.first_iteration = done + 1;
    const auto t0 = Clock::now();
    while (done < cfg.iterations) {
      const double lr = cfg.lr_at(done);
      const auto sc = step(done, lr);
      ++done;
      json line = {{"iter", done}};
      for (const auto& [k, v] : sc) line[k] = v;
      line["lr"] = lr;
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      line["time"] = secs;
      log << line.dump() << "\n" << std::flush;
      r.losses.push_back(sc.front().second);
      if (!std::isfinite(sc.front().second))
        throw DataError("loss became " + std::to_string(sc.front().second) + " at iteration " +
                        std::to_string(done) + ": lower 'lr' or set 'grad_clip'");
      if (done % cfg.checkpoint_every == 0 || done == cfg.iterations) r.last_checkpoint = save_checkpoint();
      if (opts.progress && cfg.print_every > 0 && (done % cfg.print_every == 0 || done == cfg.iterations)) {
        const double rate = static_cast<double>(done - r.first_iteration + 1) / std::max(secs, 1e-9);
        char buf[200];
        std::snprintf(buf, sizeof buf, "iter %lld/%lld  loss %.5f  lr %.3g  %.2f it/s  ETA %s\n",
                      static_cast<long long>(done), static_cast<long long>(cfg.iterations), sc.front().second,
                      lr, rate, format_duration(static_cast<double>(cfg.iterations - done) / rate).c_str());
        *opts.progress << buf << std::flush;
      }
    }
    r.last_iteration = done;
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.iterations_per_second = r.losses.empty() ? 0 : static_cast<double>(r.losses.size()) / r.seconds;
    return r;
  }
};

Trainer::Trainer(TrainConfig config, TrainOptions options) : impl_(std::make_unique<Impl>()) {
  config.validate();
  SEMAT_CHECK(!options.out_dir.empty(), ConfigError, "training needs an output folder: pass --out DIR");
  impl_->cfg = std::move(config);
  impl_->opts = std::move(options);
  impl_->build();
  if (!impl_->opts.resume.empty()) impl_->resume(impl_->opts.resume);
}

Trainer::~Trainer() = default;

TrainResult Trainer::run() { return impl_->run(); }

int64_t Trainer::iteration() const { return impl_->done; }

std::vector<io::TensorData> Trainer::frozen_weights() const {
  std::vector<io::TensorData> out;
  for (const auto& p : impl_->model->named_parameters(true))
    if (!p.value().requires_grad())
      out.push_back(sam::to_tensor_data(p.key(), p.value().detach().to(torch::kCPU)));
  return out;
}

std::vector<io::TensorData> Trainer::trained_weights() const { return impl_->trained_data(); }

TrainResult train(const TrainConfig& config, const TrainOptions& options) {
  return Trainer(config, options).run();
}

}  // namespace semat::train
