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
#include <thread>

#include <fcntl.h>
#include <stdio.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "distributed.h"
#include "semat/core/error.h"
#include "semat/core/hash.h"
#include "semat/core/log.h"
#include "semat/engine/engine.h"
#include "semat/io/files.h"
#include "semat/io/image_io.h"
#include "semat/losses/criterion.h"
#include "semat/metrics/evaluate.h"
#include "semat/metrics/protocol.h"
#include "semat/models/internal/sam/autocast.h"
#include "semat/models/internal/sam/build.h"
#include "semat/models/internal/semat_net/build.h"
#include "semat/models/internal/semat_net/run.h"
#include "semat/models/internal/semat_net/semat_model.h"
#include "semat/train/report.h"
#include "semat/train/synthetic_data.h"

namespace semat::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kWeights = "weights.safetensors";
constexpr const char* kOptimizer = "optimizer.pt";
constexpr const char* kState = "state.json";


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

// LibTorch 1.13's CPU autocast leaves layer_norm to a kernel that needs one dtype; 2.0 added
// mixed-dtype layer_norm on the CPU.
#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
constexpr bool kCpuBf16Autocast = true;
#else
constexpr bool kCpuBf16Autocast = false;
#endif

// bf16 autocast on the training device only (the other device's state is left as it is).
models::sam::AutocastState bf16_autocast(bool on, bool cuda) {
  models::sam::AutocastState s = models::sam::AutocastState::current();
  if (!on) return s;
  if (cuda)
    s.cuda = true, s.cuda_dtype = at::kBFloat16;
  else
    s.cpu = true, s.cpu_dtype = at::kBFloat16;
  return s;
}

// Puts the folder `from` at `to`. An existing `to` (a checkpoint of an earlier run past the
// resumed iteration) is swapped out atomically with renameat2(RENAME_EXCHANGE) and deleted
// afterwards, so no moment exists without a complete folder at `to`; filesystems without the
// exchange fall back to moving the old folder aside first.
void replace_dir(const fs::path& from, const fs::path& to) {
  if (!fs::exists(to)) {
    fs::rename(from, to);
    return;
  }
#ifdef RENAME_EXCHANGE
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) == 0) {
    std::error_code ec;
    fs::remove_all(from, ec);  // now holds the old folder
    return;
  }
#endif
  const fs::path aside = to.parent_path() / ("." + to.filename().string() + ".old");
  fs::remove_all(aside);
  fs::rename(to, aside);
  fs::rename(from, to);
  std::error_code ec;
  fs::remove_all(aside, ec);
}

// Tight box of alpha > 0 (the whole image when empty): the prompt of a held-out image.
Box gt_box(const cv::Mat& alpha) {
  cv::Mat nz = alpha > 0;
  const cv::Rect r = cv::boundingRect(nz);
  if (r.area() == 0) return Box{0, 0, static_cast<double>(alpha.cols), static_cast<double>(alpha.rows)};
  return Box{static_cast<double>(r.x), static_cast<double>(r.y), static_cast<double>(r.x + r.width),
             static_cast<double>(r.y + r.height)};
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

// The model of a training config: from its SAM checkpoint, or the preset with seeded random
// weights (throughput runs); the same call in the trainer and in export rebuilds the same model.
models::semat_net::SematModel build_model(const TrainConfig& cfg, const std::string& sam_override = "") {
  torch::manual_seed(cfg.seed);  // SEMat's new parts start from torch's default initialisers
  const std::string sam_path = sam_override.empty() ? cfg.sam_checkpoint : sam_override;
  models::semat_net::SematModel model{nullptr};
  if (!sam_path.empty()) {
    SEMAT_CHECK(fs::exists(sam_path), IoError,
                "SAM checkpoint '" << sam_path << "' not found: fix 'sam_checkpoint' in the config (or pass --sam)");
    model = models::semat_net::build_semat_from_sam(io::load_checkpoint(sam_path), true);
  } else {
    model = models::semat_net::SematModel(models::semat_preset(cfg.model), true);
  }
  // "backbone": the HQ-SAM variant starts from an HQ-SAM checkpoint (sam_hq_vit_*.pth), the
  // SAM2 variant from a SAM 2.0 one (sam2_hiera_*.pt).
  const std::string have = model->cfg.sam2 ? "sam2" : model->cfg.sam.hq ? "hq-sam" : "sam";
  SEMAT_CHECK(cfg.backbone.empty() || cfg.backbone == have, ConfigError,
              "train config: 'backbone' is " << cfg.backbone << " but "
                  << (sam_path.empty() ? "model " + cfg.model : "'" + sam_path + "'") << " is "
                  << (have == "sam2" ? "SAM 2" : have == "hq-sam" ? "HQ-SAM" : "plain SAM") << ": use backbone "
                  << have << " or give a " << cfg.backbone << " checkpoint (sam_vit_*.pth, sam_hq_vit_*.pth, "
                  << "sam2_hiera_*.pt)");
  return model;
}

// What checkpoints hold: the trainable parameters and the matting decoder's BatchNorm statistics
// (buffers, trained by the forward pass rather than the optimizer).
std::vector<std::pair<std::string, torch::Tensor>> trained_tensors(models::semat_net::SematModelImpl& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : model.named_parameters(true))
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  for (auto& b : model.named_buffers(true))
    if (b.key().rfind("matting_decoder.", 0) == 0 || b.key().rfind("condition_layer.", 0) == 0)
      out.emplace_back(b.key(), b.value());
  return out;
}

void load_trained(const fs::path& dir, std::vector<std::pair<std::string, torch::Tensor>>& trained) {
  const io::Checkpoint weights = io::load_checkpoint((dir / kWeights).string());
  std::map<std::string, const io::TensorData*> by_name;
  for (const auto& t : weights.tensors) by_name[t.name] = &t;
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : trained) {
    const auto it = by_name.find(name);
    SEMAT_CHECK(it != by_name.end(), CheckpointError,
                "'" << weights.source << "' lacks '" << name << "': use the config that wrote it (same model)");
    const torch::Tensor v = models::sam::from_tensor_data(*it->second);
    SEMAT_CHECK(v.sizes() == t.sizes(), CheckpointError,
                "'" << weights.source << "': '" << name << "' has shape " << v.sizes() << ", the model "
                    << t.sizes() << ": use the config that wrote it");
    t.copy_(v.to(t.device()));
  }
}

// The model under training as the engine's SEMat box model (no checkpoint round trip). The
// engine is made per evaluation, on the trainer's thread, so no locking is needed.
class TrainingModel : public engine::BoxModel {
 public:
  TrainingModel(models::semat_net::SematModelImpl& model, torch::Device device, models::SematResize resize)
      : model_(model), device_(device), resize_(resize) {}
  std::string name() const override { return "semat"; }
  bool trimaps() const override { return true; }
  bool alphas() const override { return true; }
  std::vector<engine::ModelOutput> predict(const cv::Mat& image, const std::string&, const std::vector<Box>& boxes,
                                           ChannelOrder order) override {
    std::vector<engine::ModelOutput> out;
    for (auto& m : models::semat_net::predict_mattes(model_, device_, resize_, 1, image, boxes, order))
      out.push_back({m.sam_mask, m.trimap, m.alpha});
    return out;
  }

 private:
  models::semat_net::SematModelImpl& model_;
  torch::Device device_;
  models::SematResize resize_;
};

struct EvalItem {
  std::string name, image, alpha;
};

struct Trainer::Impl {
  TrainConfig cfg;
  TrainOptions opts;
  torch::Device device{torch::kCPU};
  models::semat_net::SematModel model{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<losses::Criterion> criterion;
  std::unique_ptr<SyntheticDataset> synthetic;
  std::unique_ptr<data::TrainingSet> datasets;
  std::unique_ptr<data::Prefetcher> prefetch;
  std::vector<EvalItem> eval_items;
  std::unique_ptr<Distributed> dist;  // null: a single process
  std::vector<std::pair<std::string, torch::Tensor>> trained;
  int64_t done = 0;  // completed iterations
  std::vector<PanelRow> last_panel;  // filled by step() when a visual panel is due

  bool writer() const { return opts.distributed.rank == 0; }

  // The k-th sample this process consumes. With several ranks, rank r takes the r-th batch of
  // every group of `world` batches, so the ranks see disjoint data and the global sample index
  // still depends only on (iteration, rank): resume stays exact.
  data::TrainingSample sample(int64_t k) const {
    const int64_t B = cfg.batch_size, world = opts.distributed.world, r = opts.distributed.rank;
    const int64_t global = world == 1 ? k : ((k / B) * world + r) * B + k % B;
    return synthetic ? synthetic->get(global) : datasets->get(global);
  }

  void build() {
    const DistributedEnv& denv = opts.distributed;
    device = torch::Device(cfg.device);
    // One GPU per rank: a bare "cuda" means this rank's local device.
    if (denv.world > 1 && device.is_cuda() && !device.has_index())
      device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(denv.local_rank));
    // The config's explicit thread count (TrainConfig::threads); by default the process's own
    // set-up (semat::models::configure_runtime) stands, except that CPU ranks share the cores.
    if (cfg.threads > 0) {
      torch::set_num_threads(static_cast<int>(cfg.threads));
    } else if (denv.world > 1 && !device.is_cuda()) {
      torch::set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / denv.world));
    }
    SEMAT_CHECK(!device.is_cuda() || torch::cuda::is_available(), ConfigError,
                "train config: 'device' is " << cfg.device << " but CUDA is not available: use cpu");
    SEMAT_CHECK(cfg.amp != "bf16" || device.is_cuda() || kCpuBf16Autocast, ConfigError,
                "train config: 'amp' bf16 on the CPU needs LibTorch 2.0 or newer (1.13's CPU layer_norm "
                "refuses bfloat16 input with float weights): use device cuda, or amp off");
    // Data first: a wrong folder is reported before minutes of model loading.
    if (cfg.data.type == "datasets") {
      datasets = std::make_unique<data::TrainingSet>(cfg.data.datasets, cfg.data.augment, cfg.seed);
    } else {
      synthetic = std::make_unique<SyntheticDataset>(cfg.data, cfg.seed);
    }
    if (!cfg.eval.folder.empty() && writer()) scan_eval_folder();
    if (denv.world > 1) dist = std::make_unique<Distributed>(denv, device.is_cuda());
    model = build_model(cfg);
    const int64_t S = model->cfg.sam.encoder.img_size;
    SEMAT_CHECK(cfg.data.size <= S, ConfigError,
                "train config: 'data.size' " << cfg.data.size << " exceeds the model's input size " << S
                                             << ": use at most " << S);
    model->set_trainable();
    model->checkpoint_blocks = cfg.checkpoint_activations;
    model->to(device);
    model->train();
    trained = trained_tensors(*model);
    std::vector<torch::Tensor> params;
    for (auto& p : model->parameters())
      if (p.requires_grad()) params.push_back(p);
    optimizer = std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
    criterion = std::make_unique<losses::Criterion>(cfg.loss);
  }

  void scan_eval_folder() {
    const fs::path root(cfg.eval.folder);
    const std::string images_dir = (root / "images").string(), alpha_dir = (root / "alpha").string();
    SEMAT_CHECK(fs::is_directory(images_dir) && fs::is_directory(alpha_dir), IoError,
                "eval.folder '" << cfg.eval.folder << "' must hold images/ and alpha/ (ground truth, same file stems)");
    const auto images = metrics::list_images(images_dir, "eval.folder images/");
    const auto alphas = metrics::list_images(alpha_dir, "eval.folder alpha/");
    for (const auto& [stem, path] : images) {
      const auto it = alphas.find(stem);
      SEMAT_CHECK(it != alphas.end(), DataError,
                  "eval.folder: '" << path << "' has no ground truth '" << stem << ".*' in '" << alpha_dir
                                   << "': add it or remove the image");
      eval_items.push_back({stem, path, it->second});
    }
    for (const auto& [stem, path] : alphas)
      SEMAT_CHECK(images.count(stem), DataError,
                  "eval.folder: ground truth '" << path << "' has no image '" << stem << ".*' in '" << images_dir
                                                << "': add it or remove the ground truth");
    SEMAT_CHECK(!eval_items.empty(), DataError, "eval.folder '" << cfg.eval.folder << "' has no images");
    if (cfg.eval.max_images > 0 && static_cast<int64_t>(eval_items.size()) > cfg.eval.max_images)
      eval_items.resize(static_cast<size_t>(cfg.eval.max_images));
  }

  void resume(const std::string& arg) {
    const fs::path dir = resolve_checkpoint_dir(arg);
    const json state = json::parse(read_text(dir / kState));
    load_trained(dir, trained);
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

  // Batch of the `step`-th forward pass (accumulation steps count separately): samples
  // step * B ... step * B + B - 1, in that order whatever thread prepared them.
  std::vector<data::TrainingSample> next_batch() {
    std::vector<data::TrainingSample> out;
    for (int64_t j = 0; j < cfg.batch_size; ++j) out.push_back(prefetch->next());
    return out;
  }

  void to_tensors(const std::vector<data::TrainingSample>& smp, torch::Tensor* images, torch::Tensor* boxes,
                  torch::Tensor* alpha, torch::Tensor* trimap) {
    const int64_t B = static_cast<int64_t>(smp.size()), S = model->cfg.sam.encoder.img_size;
    std::vector<torch::Tensor> im, al, tr;
    std::vector<float> bx;
    for (const auto& x : smp) {
      const int64_t h = x.image.rows, w = x.image.cols;
      SEMAT_CHECK(h <= S && w <= S && x.alpha.size() == x.image.size() && x.trimap.size() == x.image.size(),
                  DataError, "sample '" << x.source << "' is " << w << "x" << h << ", not within the model's " << S);
      im.push_back(torch::constant_pad_nd(
          torch::from_blob(x.image.data, {h, w, 3}, torch::kByte).permute({2, 0, 1}).to(torch::kFloat) / 255.0,
          {0, S - w, 0, S - h}));
      al.push_back(torch::constant_pad_nd(torch::from_blob(x.alpha.data, {1, h, w}, torch::kFloat), {0, S - w, 0, S - h}));
      tr.push_back(torch::constant_pad_nd(torch::from_blob(x.trimap.data, {1, h, w}, torch::kFloat), {0, S - w, 0, S - h}));
      for (double v : x.box) bx.push_back(static_cast<float>(v));
    }
    // Zero padding to the model's square input, as at inference (padding is background).
    *images = model->normalize(torch::stack(im)).to(device);
    *alpha = torch::stack(al).to(device);
    *trimap = torch::stack(tr).to(device);
    *boxes = torch::tensor(bx).view({B, 4}).to(device);
  }

  // One optimizer step; returns the averaged loss components. With `panel`, keeps the first
  // batch's inputs and predictions for a visual panel.
  LogRow step(int64_t it, double lr, bool panel) {
    // Per rank too, so data-parallel replicas draw different LoRA dropout masks.
    torch::manual_seed(splitmix64(cfg.seed ^ splitmix64(static_cast<uint64_t>(it)) ^
                                  splitmix64(static_cast<uint64_t>(opts.distributed.rank) + 1)));
    for (auto& g : optimizer->param_groups())
      static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    optimizer->zero_grad();
    const bool amp = cfg.amp == "bf16";
    LogRow sums;
    for (int64_t a = 0; a < cfg.accumulate; ++a) {
      const auto smp = next_batch();
      torch::Tensor images, boxes, alpha, trimap;
      to_tensors(smp, &images, &boxes, &alpha, &trimap);
      models::semat_net::SematOutput out;
      torch::Tensor frozen;
      {
        models::sam::AutocastScope autocast(bf16_autocast(amp, device.is_cuda()));
        out = model->forward(images, boxes);
        torch::NoGradGuard no_grad;
        frozen = model->frozen_sam_logits(images, boxes);
      }
      // The losses (pyramids, GHM histograms, log-sigmoids) stay in float32.
      losses::LossInputs in;
      in.alpha = out.alpha.to(torch::kFloat);
      in.alpha_gt = alpha;
      in.trimap = trimap;
      // SEMat (HQ-SAM) regularises the HQ-token logits against the frozen HQ-SAM's
      // (reg_on_sam_logits is off in SEMat_HQ-SAM.py; frozen_sam_logits returns the HQ ones).
      in.sam_logits = (out.hq_logits.defined() ? out.hq_logits : out.sam_logits).to(torch::kFloat);
      in.frozen_sam_logits = frozen.to(torch::kFloat);
      in.trimap_logits = out.matting_logits.to(torch::kFloat);
      const losses::LossTerms terms = (*criterion)(in);
      (terms.total / static_cast<double>(cfg.accumulate)).backward();
      const auto sc = terms.scalars();
      if (sums.empty()) sums.assign(sc.size(), {"", 0.0});
      for (size_t i = 0; i < sc.size(); ++i) {
        sums[i].first = sc[i].first;
        sums[i].second += sc[i].second / static_cast<double>(cfg.accumulate);
      }
      if (panel && a == 0) keep_panel(smp, out);
    }
    if (dist) sync_step(&sums);
    if (cfg.grad_clip > 0) {
      std::vector<torch::Tensor> params;
      for (auto& g : optimizer->param_groups())
        for (auto& p : g.params()) params.push_back(p);
      torch::nn::utils::clip_grad_norm_(params, cfg.grad_clip);
    }
    optimizer->step();
    return sums;
  }

  // Data parallel: every rank ends the step with the mean gradient (so the identical AdamW steps
  // keep the replicas identical), the mean losses for the log, and one GHM state. The GHM
  // accumulators are moving averages of bin counts, linear in the counts, so averaging them
  // equals averaging the counts; the normalised GHM weights do not depend on the scale.
  void sync_step(LogRow* sums) {
    std::vector<torch::Tensor> grads;
    for (auto& g : optimizer->param_groups())
      for (auto& p : g.params())
        if (p.grad().defined()) grads.push_back(p.grad());
    auto losses = torch::zeros({static_cast<int64_t>(sums->size())}, torch::kDouble);
    for (size_t i = 0; i < sums->size(); ++i) losses[static_cast<int64_t>(i)] = (*sums)[i].second;
    auto ghm = criterion->ghm().accumulators().clone();
    grads.push_back(losses);
    grads.push_back(ghm);
    dist->allreduce_mean(grads);
    for (size_t i = 0; i < sums->size(); ++i) (*sums)[i].second = losses[static_cast<int64_t>(i)].item<double>();
    criterion->ghm().set_accumulators(ghm);
  }

  // Before a checkpoint: BatchNorm statistics averaged over the ranks, and a check that the
  // replicas are still identical (they can only drift if a gradient was not all-reduced).
  void sync_checkpoint() {
    std::vector<torch::Tensor> stats;
    for (auto& [name, t] : trained)
      if (!t.requires_grad() && t.is_floating_point()) stats.push_back(t);
    dist->allreduce_mean(stats);
    double checksum = 0;
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, t] : trained)
        if (t.requires_grad()) checksum += t.to(torch::kDouble).sum().item<double>();
    }
    const auto [hi, lo] = dist->max_min(checksum);
    SEMAT_CHECK(hi == lo, StateError,
                "data-parallel replicas diverged at iteration " << done << " (parameter sums " << lo << " .. " << hi
                                                                << "): every rank must run the same semat and config");
  }

  void keep_panel(const std::vector<data::TrainingSample>& smp, const models::semat_net::SematOutput& out) {
    last_panel.clear();
    const auto alpha = out.alpha.detach().to(torch::kFloat).to(torch::kCPU).contiguous();
    const auto tri = (out.matting_logits.detach().argmax(1).to(torch::kFloat) * 0.5).to(torch::kCPU).contiguous();
    const int64_t S = model->cfg.sam.encoder.img_size;
    for (size_t j = 0; j < smp.size(); ++j) {
      const cv::Rect content(0, 0, smp[j].image.cols, smp[j].image.rows);
      PanelRow row;
      row.image = smp[j].image;
      std::copy(std::begin(smp[j].box), std::end(smp[j].box), row.box);
      const auto jj = static_cast<int64_t>(j);
      row.alpha = cv::Mat(static_cast<int>(S), static_cast<int>(S), CV_32F, alpha[jj][0].data_ptr<float>())(content).clone();
      row.trimap = cv::Mat(static_cast<int>(S), static_cast<int>(S), CV_32F, tri[jj].data_ptr<float>())(content).clone();
      row.alpha_gt = smp[j].alpha;
      last_panel.push_back(std::move(row));
    }
  }

  std::vector<io::TensorData> trained_data() const {
    std::vector<io::TensorData> out;
    for (const auto& [name, t] : trained) out.push_back(models::sam::to_tensor_data(name, t.detach().to(torch::kCPU)));
    return out;
  }

  // Assembled in a hidden folder and swapped into place, then `latest` is switched: a crash or a
  // full disk at any point leaves the previous checkpoints and `latest` intact.
  std::string save_checkpoint() {
    const fs::path root = fs::path(opts.out_dir) / "checkpoints";
    const std::string name = iter_name(done);
    const fs::path final_dir = root / name, tmp = root / ("." + name + ".tmp");
    auto fail = [&](const std::string& why) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      std::string last = "none yet";
      try {
        last = "'" + resolve_checkpoint_dir(opts.out_dir) + "'";
      } catch (...) {  // the message about the failed write matters more
      }
      throw IoError("cannot write checkpoint '" + final_dir.string() + "': " + why +
                    " (free disk space and resume; the last good checkpoint " + last + " is intact)");
    };
    try {
      fs::create_directories(root);
      fs::remove_all(tmp);
      fs::create_directories(tmp);
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
      replace_dir(tmp, final_dir);
      io::write_file_atomic((root / "latest").string(), to_bytes(name + "\n"));
    } catch (const fs::filesystem_error& e) {
      fail(e.code().message());
    } catch (const Error& e) {
      fail(e.what());
    } catch (const c10::Error& e) {
      fail(e.what_without_backtrace());
    }
    prune(root);
    return final_dir.string();
  }

  void prune(const fs::path& root) {
    if (cfg.keep_checkpoints <= 0) return;
    // Only checkpoints up to this one count: a run resumed from an earlier checkpoint finds the
    // later folders of its first trajectory, which must neither use up the budget nor make the
    // checkpoint just written the "oldest" one.
    const std::string newest = iter_name(done);
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(root)) {
      const std::string n = e.path().filename().string();
      if (e.is_directory() && n.rfind("iter_", 0) == 0 && n <= newest) names.push_back(n);
    }
    std::sort(names.begin(), names.end());  // zero-padded: lexical = numeric
    for (size_t i = 0; i + static_cast<size_t>(cfg.keep_checkpoints) < names.size(); ++i) {
      std::error_code ec;
      fs::remove_all(root / names[i], ec);
    }
  }

  // Held-out metrics with the model as it is now (eval mode, float32, then back to training),
  // through the same matting engine as `semat matte --semat` (with eval.refine, --refine).
  json evaluate() {
    model->eval();
    engine::EngineSpec spec;
    spec.refine = cfg.eval.refine;
    const engine::Engine engine(
        spec, std::make_shared<TrainingModel>(*model, device, models::parse_semat_resize(cfg.eval.resize)));
    const auto t0 = Clock::now();
    metrics::Scores sum;
    for (const auto& item : eval_items) {
      const cv::Mat image = io::read_color(item.image);
      const cv::Mat gt = metrics::read_alpha(item.alpha);
      SEMAT_CHECK(gt.size() == image.size(), DataError,
                  "eval.folder: '" << item.alpha << "' is " << gt.cols << "x" << gt.rows << " but its image is "
                                   << image.cols << "x" << image.rows << ": use the image's size");
      const auto mattes = engine.run(image, {engine::Prompt::from_box(gt_box(gt))});
      cv::Mat pred;
      mattes[0].alpha.convertTo(pred, CV_64F);
      const metrics::Scores s = metrics::score_semat(pred, gt);
      sum.sad += s.sad, sum.mse += s.mse, sum.mad += s.mad, sum.grad += s.grad, sum.conn += s.conn;
    }
    model->train();
    const double n = static_cast<double>(eval_items.size());
    return {{"iter", done},           {"images", eval_items.size()}, {"sad", sum.sad / n},
            {"mse", sum.mse / n},     {"mad", sum.mad / n},          {"grad", sum.grad / n},
            {"conn", sum.conn / n},   {"seconds", std::chrono::duration<double>(Clock::now() - t0).count()}};
  }

  TrainResult run() { return writer() ? run_loop<true>() : run_loop<false>(); }

  // Rank 0 (kWriter) writes logs, pictures, evaluations and checkpoints; other ranks compute.
  template <bool kWriter>
  TrainResult run_loop() {
    const fs::path out(opts.out_dir);
    const fs::path log_path = out / "log.jsonl", csv_path = out / "log.csv", eval_path = out / "eval.jsonl";
    std::ofstream log;
    std::unique_ptr<CsvLog> csv;
    if (kWriter) open_logs(log_path, csv_path, eval_path, &log, &csv);
    TrainProgress progress(kWriter ? opts.progress : nullptr, opts.progress_style, cfg.iterations, done + 1,
                           cfg.print_every);
    const int64_t per_iter = cfg.batch_size * cfg.accumulate;
    prefetch = std::make_unique<data::Prefetcher>([this](int64_t k) { return sample(k); }, done * per_iter,
                                                  static_cast<int>(cfg.data.workers),
                                                  static_cast<int>(std::max(cfg.data.prefetch, cfg.batch_size)));
    TrainResult r;
    r.first_iteration = done + 1;
    const auto t0 = Clock::now();
    while (done < cfg.iterations) {
      const double lr = cfg.lr_at(done);
      const bool last = done + 1 == cfg.iterations;
      const bool panel = kWriter && cfg.visual_every > 0 && ((done + 1) % cfg.visual_every == 0 || last);
      const LogRow sc = step(done, lr, panel);
      ++done;
      r.losses.push_back(sc.front().second);
      if (!std::isfinite(sc.front().second))
        throw DataError("loss became " + std::to_string(sc.front().second) + " at iteration " +
                        std::to_string(done) + ": lower 'lr' or set 'grad_clip'");
      const bool checkpoint = done % cfg.checkpoint_every == 0 || last;
      if (checkpoint && dist) sync_checkpoint();
      if (!kWriter) continue;
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      LogRow row = sc;
      row.emplace_back("lr", lr);
      row.emplace_back("time", secs);
      json line = {{"iter", done}};
      for (const auto& [k, v] : row) line[k] = v;
      log << line.dump() << "\n" << std::flush;
      if (!log) throw IoError("cannot append to '" + log_path.string() + "': disk full?");
      csv->append(done, row);
      progress.update(done, sc.front().second, lr);
      // The checkpoint first: it is what a crash or a full disk must not cost.
      if (checkpoint) r.last_checkpoint = save_checkpoint();
      // Pictures are for people: failing to write one warns and training goes on.
      try {
        if (panel && !last_panel.empty()) {
          fs::create_directories(out / "visuals");
          io::write_file_atomic((out / "visuals" / (iter_name(done) + ".png")).string(),
                                io::encode_png(render_panel(last_panel)));
        }
        if (done % cfg.plot_every == 0 || last) write_loss_plot(log_path.string(), (out / "loss_plot.png").string());
      } catch (const std::exception& e) {
        progress.message("");  // end the bar's line first
        SEMAT_LOG_WARN("train", e.what() << " (training goes on)");
      }
      last_panel.clear();
      if (!eval_items.empty() && (done % cfg.eval.every == 0 || last)) {
        const json e = evaluate();
        std::ofstream eval_log(eval_path, std::ios::app);
        eval_log << e.dump() << "\n" << std::flush;
        if (!eval_log) throw IoError("cannot append to '" + eval_path.string() + "': disk full?");
        char buf[200];
        std::snprintf(buf, sizeof buf, "eval @%lld on %zu images: SAD %.4f  MSE %.5f  MAD %.5f  Grad %.4f  Conn %.4f",
                      static_cast<long long>(done), eval_items.size(), e["sad"].get<double>(),
                      e["mse"].get<double>(), e["mad"].get<double>(), e["grad"].get<double>(),
                      e["conn"].get<double>());
        progress.message(buf);
      }
    }
    progress.finish();
    prefetch.reset();
    r.last_iteration = done;
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.iterations_per_second = r.losses.empty() ? 0 : static_cast<double>(r.losses.size()) / r.seconds;
    return r;
  }

  void open_logs(const fs::path& log_path, const fs::path& csv_path, const fs::path& eval_path, std::ofstream* log,
                 std::unique_ptr<CsvLog>* csv) {
    io::ensure_writable_dir(opts.out_dir);
    if (done > 0) {
      trim_jsonl_log(log_path.string(), done);
      trim_csv_log(csv_path.string(), done);
      trim_jsonl_log(eval_path.string(), done);
    } else {
      for (const auto& p : {log_path, csv_path, eval_path}) {
        std::error_code ec;
        fs::remove(p, ec);
      }
    }
    log->open(log_path, std::ios::app);
    if (!*log) throw IoError("cannot write '" + log_path.string() + "': check the folder's permissions");
    *csv = std::make_unique<CsvLog>(csv_path.string());
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
      out.push_back(models::sam::to_tensor_data(p.key(), p.value().detach().to(torch::kCPU)));
  return out;
}

std::vector<io::TensorData> Trainer::trained_weights() const { return impl_->trained_data(); }

ExportResult export_checkpoint(const std::string& checkpoint, const std::string& out_path,
                               const std::string& sam_checkpoint) {
  const fs::path dir = resolve_checkpoint_dir(checkpoint);
  const json state = json::parse(read_text(dir / kState), nullptr, false);
  SEMAT_CHECK(!state.is_discarded() && state.contains("config") && state.contains("iteration"), CheckpointError,
              "'" << (dir / kState).string() << "' is not a semat training state: give a folder written by semat train");
  const TrainConfig cfg = parse_train_config(state["config"].dump(), (dir / kState).string());
  models::semat_net::SematModel model = build_model(cfg, sam_checkpoint);
  model->set_trainable();
  auto trained = trained_tensors(*model);
  load_trained(dir, trained);
  std::vector<io::TensorData> tensors;
  for (const auto& p : model->named_parameters(true))
    tensors.push_back(models::sam::to_tensor_data(p.key(), p.value().detach().to(torch::kCPU)));
  for (const auto& b : model->named_buffers(true))
    tensors.push_back(models::sam::to_tensor_data(b.key(), b.value().detach().to(torch::kCPU)));
  ExportResult r;
  r.path = out_path;
  r.model = model->cfg.name;
  r.iteration = state["iteration"].get<int64_t>();
  r.tensors = static_cast<int64_t>(tensors.size());
  for (const auto& t : tensors) r.bytes += static_cast<int64_t>(t.bytes.size());
  io::save_safetensors(out_path, tensors,
                       {{"format", "semat"}, {"model", r.model}, {"iteration", std::to_string(r.iteration)},
                        {"source", dir.string()}});
  return r;
}

TrainResult train(const TrainConfig& config, const TrainOptions& options) {
  return Trainer(config, options).run();
}

}  // namespace semat::train
