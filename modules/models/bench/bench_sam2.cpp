// SAM 2 on CPU: the image encoder (Hiera trunk + FPN neck + the decoder's conv_s0/conv_s1, i.e.
// everything SAM2ImagePredictor.set_image runs) at 1024 with random weights of the real shapes,
// the prompt-to-mask latency from cached features, and peak memory.
// Run: make bench BENCH_ARGS='--benchmark_filter=Sam2'
#include <sys/resource.h>

#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include "semat/models/internal/sam2/sam2_base.h"
#include "semat/models/sam2_config.h"

namespace {

double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / (1024.0 * 1024.0);
}

semat::models::sam2::Sam2Base random_model(const std::string& name) {
  semat::models::sam2::Sam2Base m(semat::models::sam2_preset(name));
  m->eval();
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) p.normal_(0, 0.02);
  return m;
}

// `bf16`: the Hiera trunk in bfloat16 (HieraImpl::set_compute_dtype, as --precision bf16), the
// FPN neck and conv_s0/conv_s1 in float32. Meaningful only on CPUs with AMX-BF16 / AVX512-BF16.
void BM_Sam2ImageEncoder(benchmark::State& state, const std::string& name, bool bf16) {
  torch::InferenceMode guard;
  auto m = random_model(name);
  if (bf16) m->image_encoder->trunk->set_compute_dtype(torch::kBFloat16);
  const int64_t s = m->cfg.image_size;
  const auto x = torch::randn({1, 3, s, s});
  for (auto _ : state) benchmark::DoNotOptimize(m->forward_image(x).image_embed);
  state.counters["peak_rss_GiB"] = peak_rss_gib();
  state.counters["threads"] = torch::get_num_threads();
}
BENCHMARK_CAPTURE(BM_Sam2ImageEncoder, hiera_t, std::string("sam2_hiera_t"), false)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Sam2ImageEncoder, hiera_t_bf16, std::string("sam2_hiera_t"), true)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Sam2ImageEncoder, hiera_l, std::string("sam2_hiera_l"), false)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Sam2ImageEncoder, hiera_l_bf16, std::string("sam2_hiera_l"), true)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

// One box through the prompt encoder and the mask decoder on cached features (the per-prompt work).
void BM_Sam2BoxDecode(benchmark::State& state) {
  torch::InferenceMode guard;
  auto m = random_model("sam2_hiera_t");
  const int64_t g = m->cfg.grid(), d = m->cfg.decoder.transformer_dim;
  const auto embed = torch::randn({1, d, g, g});
  const std::vector<torch::Tensor> hr = {torch::randn({1, d / 8, 4 * g, 4 * g}), torch::randn({1, d / 4, 2 * g, 2 * g})};
  const auto pe = m->sam_prompt_encoder->get_dense_pe();
  const auto coords = torch::tensor({100.f, 100.f, 700.f, 800.f}).view({1, 2, 2});
  const auto labels = torch::tensor({2, 3}, torch::kLong).view({1, 2});
  for (auto _ : state) {
    auto emb = m->sam_prompt_encoder->forward(coords, labels, {}, {});
    auto out = m->sam_mask_decoder->predict_masks(embed, pe, emb.sparse, emb.dense, hr);
    benchmark::DoNotOptimize(m->sam_mask_decoder->select_masks(out, false).first);
  }
  state.counters["threads"] = torch::get_num_threads();
}
BENCHMARK(BM_Sam2BoxDecode)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
