// ViTMatte on CPU: one image + trimap through ViTMatte-S / -B (random weights of the real shapes)
// at 1024 x 1024 and 2048 x 2048, the full official path (preprocess, ViT, detail capture,
// sigmoid, crop). Reports seconds per image and peak RSS (run one benchmark per process for a
// per-case peak). Run: semat_models_bench --benchmark_filter=VitMatte/s/1024
#include <sys/resource.h>

#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include "semat/models/internal/vitmatte/vitmatte.h"
#include "semat/models/vitmatte_config.h"

namespace {

double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / (1024.0 * 1024.0);
}

void BM_VitMatte(benchmark::State& state, const std::string& preset) {
  torch::InferenceMode guard;
  const int64_t side = state.range(0);
  semat::models::vitmatte::VitMatte model(semat::models::vitmatte_preset(preset));
  for (auto& p : model->parameters()) p.normal_(0, 0.02);
  model->eval();
  const auto rgb = torch::rand({1, 3, side, side});
  // A disc trimap: background, a band, foreground (the values the engine passes).
  const auto yy = torch::arange(side).view({-1, 1}).to(torch::kFloat) - side / 2.0;
  const auto xx = torch::arange(side).view({1, -1}).to(torch::kFloat) - side / 2.0;
  const auto r = (yy * yy + xx * xx).sqrt() / side;
  const auto trimap = torch::where(r < 0.25, torch::ones_like(r),
                                   torch::where(r < 0.3, torch::full_like(r, 128.0 / 255), torch::zeros_like(r)))
                          .view({1, 1, side, side});
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(rgb, trimap));
  state.counters["peak_rss_GiB"] = peak_rss_gib();
  state.counters["threads"] = torch::get_num_threads();
}
BENCHMARK_CAPTURE(BM_VitMatte, tiny, std::string("vitmatte-tiny"))->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_VitMatte, s, std::string("vitmatte-s"))
    ->Arg(1024)
    ->Arg(2048)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_VitMatte, b, std::string("vitmatte-b"))
    ->Arg(1024)
    ->Arg(2048)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace
