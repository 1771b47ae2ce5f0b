// IS-Net at 1024 x 1024 through semat::onnx (float32). The model comes from SEMAT_MODELS
// (isnet_medium_fp16.onnx, installed by `make models`); the benchmark reports an error without it.
// Threads: semat::models::configure_runtime (every logical core unless SEMAT_THREADS /
// OMP_NUM_THREADS say otherwise).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include <opencv2/core.hpp>

#include "semat/models/runtime.h"
#include "semat/onnx/isnet.h"

namespace {

void BM_IsNet1024(benchmark::State& state) {
  const char* dir = std::getenv("SEMAT_MODELS");
  const auto path = std::filesystem::path(dir ? dir : "") / "isnet_medium_fp16.onnx";
  if (!dir || !std::filesystem::exists(path)) {
    state.SkipWithError("IS-Net not installed (make models, or set SEMAT_MODELS)");
    return;
  }
  semat::models::configure_runtime(semat::models::runtime_options_from_environment());
  const semat::onnx::IsNet net(path.string());
  cv::Mat rgb(semat::onnx::IsNet::kSide, semat::onnx::IsNet::kSide, CV_8UC3);
  cv::randu(rgb, 0, 256);
  net.probability_1024(rgb);  // warm-up: allocator, mkldnn primitives, shape cache
  for (auto _ : state) benchmark::DoNotOptimize(net.probability_1024(rgb));
  state.counters["threads"] = semat::models::runtime_threads();
}
BENCHMARK(BM_IsNet1024)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
