// SAM on CPU: GEMM rate of this LibTorch build (the yardstick), image-encoder time and achieved
// GFLOP/s for ViT-B/L/H at 1024 with random weights of the real shapes, prompt-to-mask latency
// from a cached embedding, HQ-SAM's per-image and per-prompt work, and peak memory.
// Run: make bench BENCH_ARGS='--benchmark_filter=Sam|Gemm'
#include <sys/resource.h>

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <vector>

#include <benchmark/benchmark.h>

#include "semat/models/internal/sam/sam.h"
#include "semat/models/sam_config.h"

namespace {

using semat::models::SamConfig;

// CPU seconds of every thread of the process: on a loaded shared machine the figure that other
// processes disturb least (wall time there says little); with SEMAT_THREADS=1 it is the wall
// time a quiet machine would show on one core.
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / (1024.0 * 1024.0);
}

// Multiply-adds x 2 of one encoder pass (linear layers, attention products, patch embed, neck).
double encoder_flops(const SamConfig& c) {
  const auto& e = c.encoder;
  const double D = e.embed_dim, g = e.grid();
  const double padded = std::ceil(g / e.window_size) * e.window_size;
  double f = 2.0 * g * g * D * 3 * e.patch_size * e.patch_size;  // patch embed
  for (int64_t i = 0; i < e.depth; ++i) {
    const bool global = std::count(e.global_attn_indexes.begin(), e.global_attn_indexes.end(), i) > 0;
    const double n = global ? g * g : padded * padded;  // tokens entering attention
    const double per_window = global ? g * g : e.window_size * e.window_size;
    f += 2.0 * n * D * 3 * D + 2.0 * n * D * D;          // qkv, proj
    f += 2.0 * 2.0 * n * per_window * D;                 // q k^T and attn v
    f += 2.0 * g * g * D * D * e.mlp_ratio * 2;          // mlp
  }
  f += 2.0 * g * g * D * e.out_chans + 2.0 * g * g * e.out_chans * e.out_chans * 9;  // neck
  return f;
}

void BM_GemmRate(benchmark::State& state) {
  torch::InferenceMode guard;
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const auto a = torch::randn({m, k}), b = torch::randn({k, n});
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) benchmark::DoNotOptimize(torch::mm(a, b));
  state.counters["GFLOP_per_cpu_s"] = 2.0 * m * k * n * state.iterations() / (process_cpu_seconds() - cpu0) / 1e9;
  state.counters["GFLOPs"] = benchmark::Counter(2.0 * m * k * n, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.counters["threads"] = torch::get_num_threads();
}
// Shapes of ViT-B's qkv and mlp GEMMs on 4096 tokens, and a square one.
BENCHMARK(BM_GemmRate)->Args({4096, 768, 2304})->Args({4096, 768, 3072})->Args({2048, 2048, 2048})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// The same products in bfloat16 (the --precision bf16 path), by the three entry points a model
// can take: torch::mm (activations x weights), at::linear (weights [n, k] as nn::Linear stores
// them, with a bias) and at::addmm. Which one reaches oneDNN's bf16 kernels (AVX-512 BF16 / AMX)
// differs between LibTorch releases; the encoder uses the fastest (semat/models/precision.h).
void BM_GemmRateBf16(benchmark::State& state, int how) {
  torch::InferenceMode guard;
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const auto a = torch::randn({m, k}).to(torch::kBFloat16);
  const auto b = torch::randn({k, n}).to(torch::kBFloat16);
  const auto w = torch::randn({n, k}).to(torch::kBFloat16);
  const auto bias = torch::randn({n}).to(torch::kBFloat16);
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    if (how == 0) benchmark::DoNotOptimize(torch::mm(a, b));
    else if (how == 1) benchmark::DoNotOptimize(at::linear(a, w, bias));
    else benchmark::DoNotOptimize(at::addmm(bias, a, w.t()));
  }
  state.counters["GFLOP_per_cpu_s"] = 2.0 * m * k * n * state.iterations() / (process_cpu_seconds() - cpu0) / 1e9;
  state.counters["GFLOPs"] = benchmark::Counter(2.0 * m * k * n, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.counters["threads"] = torch::get_num_threads();
}
BENCHMARK_CAPTURE(BM_GemmRateBf16, mm, 0)->Args({4096, 768, 2304})->Args({4096, 768, 3072})->Args({2048, 2048, 2048})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GemmRateBf16, linear, 1)->Args({4096, 768, 2304})->Args({4096, 768, 3072})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GemmRateBf16, addmm, 2)->Args({4096, 768, 2304})->Args({4096, 768, 3072})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Convolutions in both precisions: the ViT's 16 x 16 / stride 16 patch embedding and a 3 x 3
// convolution of IS-Net's size class at 512 x 512 (its RSU blocks), NCHW and channels_last.
void BM_Conv(benchmark::State& state, int kind, bool bf16, bool channels_last) {
  torch::InferenceMode guard;
  const auto dt = bf16 ? torch::kBFloat16 : torch::kFloat32;
  torch::Tensor x, w;
  int64_t stride = 1, pad = 0;
  if (kind == 0) {  // patch embed: 3 -> 768, k16 s16 at 1024
    x = torch::randn({1, 3, 1024, 1024}), w = torch::randn({768, 3, 16, 16}), stride = 16;
  } else {  // 3x3, 64 -> 64 at 512
    x = torch::randn({1, 64, 512, 512}), w = torch::randn({64, 64, 3, 3}), pad = 1;
  }
  x = x.to(dt), w = w.to(dt);
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast), w = w.contiguous(at::MemoryFormat::ChannelsLast);
  const auto out = at::conv2d(x, w, {}, stride, pad);
  const double flops = 2.0 * out.numel() * w.size(1) * w.size(2) * w.size(3);
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) benchmark::DoNotOptimize(at::conv2d(x, w, {}, stride, pad));
  state.counters["GFLOP_per_cpu_s"] = flops * state.iterations() / (process_cpu_seconds() - cpu0) / 1e9;
  state.counters["GFLOPs"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}
BENCHMARK_CAPTURE(BM_Conv, patch_fp32, 0, false, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv, patch_bf16, 0, true, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv, patch_bf16_cl, 0, true, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv, c3x3_fp32, 1, false, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv, c3x3_fp32_cl, 1, false, true)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv, c3x3_bf16, 1, true, false)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv, c3x3_bf16_cl, 1, true, true)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SamImageEncoder(benchmark::State& state, const std::string& name, bool bf16 = false) {
  torch::InferenceMode guard;
  const SamConfig cfg = semat::models::sam_preset(name);
  semat::models::sam::ImageEncoderViT enc(cfg.encoder);
  enc->eval();
  for (auto& p : enc->parameters()) p.normal_(0, 0.02);
  if (bf16) enc->set_compute_dtype(torch::kBFloat16);  // --precision bf16: converted once, here
  const auto x = torch::randn({1, 3, cfg.encoder.img_size, cfg.encoder.img_size});
  if (bf16) enc->forward(x);  // warm-up: oneDNN primitives are created on first use
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) benchmark::DoNotOptimize(enc->forward(x));
  state.counters["cpu_s_per_pass"] = (process_cpu_seconds() - cpu0) / static_cast<double>(state.iterations());
  state.counters["GFLOPs"] = benchmark::Counter(encoder_flops(cfg), benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
  state.counters["TFLOP_per_pass"] = encoder_flops(cfg) / 1e12;
  state.counters["peak_rss_GiB"] = peak_rss_gib();
  state.counters["threads"] = torch::get_num_threads();
}
BENCHMARK_CAPTURE(BM_SamImageEncoder, vit_b, std::string("vit_b"))->Iterations(2)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SamImageEncoder, vit_l, std::string("vit_l"))->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SamImageEncoder, vit_h, std::string("vit_h"))->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
// --precision bf16 (AMX / AVX512-BF16 CPUs): the same encoders with bf16 weights and activations.
BENCHMARK_CAPTURE(BM_SamImageEncoder, vit_b_bf16, std::string("vit_b"), true)->Iterations(3)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SamImageEncoder, vit_l_bf16, std::string("vit_l"), true)->Iterations(2)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SamImageEncoder, vit_h_bf16, std::string("vit_h"), true)->Iterations(2)->Unit(benchmark::kSecond)->UseRealTime();

// Where one encoder pass spends its time, on ONE thread (so the shares are those of a core and
// every range is on the calling thread): the named ranges the encoder marks (patch_embed, norm1,
// win.partition, attn.qkv, attn.relpos, attn.qk, attn.bias, attn.softmax, attn.av, attn.merge,
// attn.proj, win.unpartition, residual, norm2, mlp.lin1, mlp.act, mlp.lin2, neck), read from
// LibTorch's legacy profiler; a table on stderr and ms_<range> counters. Ranges nest: attn.heads
// holds attn.relpos, attn.core and attn.merge; attn.core holds attn.qk/bias/softmax/av.
void BM_SamEncoderProfile(benchmark::State& state, const std::string& name, bool bf16) {
  namespace prof = torch::autograd::profiler;
  torch::InferenceMode guard;
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const SamConfig cfg = semat::models::sam_preset(name);
  semat::models::sam::ImageEncoderViT enc(cfg.encoder);
  enc->eval();
  for (auto& p : enc->parameters()) p.normal_(0, 0.02);
  if (bf16) enc->set_compute_dtype(torch::kBFloat16);
  const auto x = torch::randn({1, 3, cfg.encoder.img_size, cfg.encoder.img_size});
  enc->forward(x);  // warm-up
  std::map<std::string, std::pair<double, int64_t>> ms;  // range -> (ms, count)
  double total_ms = 0;
  for (auto _ : state) {
    prof::enableProfilerLegacy(prof::ProfilerConfig(prof::ProfilerState::CPU));
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(enc->forward(x));
    total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const auto lists = prof::disableProfilerLegacy();
    for (const auto& list : lists) {
      std::vector<const prof::LegacyEvent*> stack;
      for (const auto& e : list) {
        if (e.kind() == prof::EventKind::PushRange) {
          stack.push_back(&e);
        } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
          const auto* p = stack.back();
          stack.pop_back();
          const std::string n = p->name();
          if (n.rfind("aten::", 0) == 0 || n.empty()) continue;
          auto& slot = ms[n];
          slot.first += p->cpuElapsedUs(e) / 1e3;
          slot.second += 1;
        }
      }
    }
  }
  const double iters = static_cast<double>(state.iterations());
  std::fprintf(stderr, "%s %s, 1 thread: %.0f ms per pass\n", name.c_str(), bf16 ? "bf16" : "fp32", total_ms / iters);
  for (const auto& [n, v] : ms) {
    std::fprintf(stderr, "  %-16s %9.1f ms %5.1f%%  (%lld calls)\n", n.c_str(), v.first / iters,
                 100.0 * v.first / total_ms, static_cast<long long>(v.second / iters));
    state.counters["ms_" + n] = v.first / iters;
  }
  state.counters["ms_total"] = total_ms / iters;
  torch::set_num_threads(threads);
}
BENCHMARK_CAPTURE(BM_SamEncoderProfile, vit_b_bf16, std::string("vit_b"), true)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SamEncoderProfile, vit_b_fp32, std::string("vit_b"), false)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

// HQ-SAM's per-image work: the same ViT (keeping the first global block's output) plus the HQ
// global-local features (embedding_encoder + compress_vit_feat), which the predictor computes per
// prompt batch; next to BM_SamImageEncoder of the same size in one run.
void BM_HqSamImage(benchmark::State& state, const std::string& name) {
  torch::InferenceMode guard;
  const SamConfig cfg = semat::models::sam_preset(name);
  semat::models::sam::Sam sam(cfg);
  sam->eval();
  for (auto& p : sam->parameters()) p.normal_(0, 0.02);
  const auto x = torch::randn({1, 3, cfg.encoder.img_size, cfg.encoder.img_size});
  for (auto _ : state) {
    const auto enc = sam->image_encoder->forward_features(x);
    benchmark::DoNotOptimize(sam->mask_decoder_hq->hq_features(enc.embedding, enc.global_blocks.at(0)));
  }
  state.counters["peak_rss_GiB"] = peak_rss_gib();
  state.counters["threads"] = torch::get_num_threads();
}
BENCHMARK_CAPTURE(BM_HqSamImage, hq_vit_b, std::string("hq_vit_b"))->Iterations(2)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_HqSamImage, hq_vit_l, std::string("hq_vit_l"))->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

// Prompt encoder + mask decoder + upscaling to a 1024 x 768 image, from a cached embedding.
void BM_SamPromptToMask(benchmark::State& state) {
  torch::InferenceMode guard;
  const SamConfig cfg = semat::models::sam_preset("vit_b");
  semat::models::sam::Sam sam(cfg);
  sam->eval();
  const auto emb = torch::randn({1, 256, 64, 64});
  const auto box = torch::tensor({{100.f, 120.f, 700.f, 650.f}});
  const auto pe = sam->prompt_encoder->get_dense_pe();
  for (auto _ : state) {
    auto p = sam->prompt_encoder->forward({}, {}, box, {});
    auto d = sam->mask_decoder->forward(emb, pe, p.sparse, p.dense, false);
    benchmark::DoNotOptimize(sam->postprocess_masks(d.masks, 768, 1024, 768, 1024));
  }
  state.counters["peak_rss_GiB"] = peak_rss_gib();
}
BENCHMARK(BM_SamPromptToMask)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same for HQ-SAM ViT-B (HQ token and fusion layers on top), from a cached embedding and
// early ViT feature.
void BM_HqSamPromptToMask(benchmark::State& state) {
  torch::InferenceMode guard;
  const SamConfig cfg = semat::models::sam_preset("hq_vit_b");
  semat::models::sam::Sam sam(cfg);
  sam->eval();
  const auto emb = torch::randn({1, 256, 64, 64});
  const auto interm = torch::randn({1, 64, 64, cfg.encoder.embed_dim});
  const auto box = torch::tensor({{100.f, 120.f, 700.f, 650.f}});
  const auto pe = sam->prompt_encoder->get_dense_pe();
  for (auto _ : state) {
    auto p = sam->prompt_encoder->forward({}, {}, box, {});
    auto d = sam->mask_decoder_hq->forward_hq(emb, pe, p.sparse, p.dense, interm, false, false);
    benchmark::DoNotOptimize(sam->postprocess_masks(d.masks, 768, 1024, 768, 1024));
  }
  state.counters["peak_rss_GiB"] = peak_rss_gib();
}
BENCHMARK(BM_HqSamPromptToMask)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
