// IS-Net at 1024 x 1024 through semat::onnx, in float32 and bf16. The model comes from the models folder
// (semat/io/model_store.h: `make models`, SEMAT_MODELS); the benchmark reports an error without it.
// Threads: semat::models::configure_runtime (every logical core unless SEMAT_THREADS /
// OMP_NUM_THREADS say otherwise).
#include <benchmark/benchmark.h>

#include <exception>
#include <memory>
#include <string>

#include <sys/resource.h>

#include <opencv2/core.hpp>

#include "semat/io/model_store.h"
#include "semat/models/runtime.h"
#include "semat/onnx/isnet.h"

namespace {

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

void BM_IsNet1024(benchmark::State& state, const std::string& precision) {
  const auto path = semat::io::find_model("isnet-medium");
  if (!path) {
    state.SkipWithError(semat::io::install_hint("isnet-medium").c_str());
    return;
  }
  semat::models::configure_runtime(semat::models::runtime_options_from_environment());
  std::unique_ptr<semat::onnx::IsNet> loaded;
  try {
    loaded = std::make_unique<semat::onnx::IsNet>(*path, "cpu", precision);
  } catch (const std::exception& e) {  // bf16 on a CPU without bf16 units
    state.SkipWithError(e.what());
    return;
  }
  const semat::onnx::IsNet& net = *loaded;
  cv::Mat rgb(semat::onnx::IsNet::kSide, semat::onnx::IsNet::kSide, CV_8UC3);
  cv::randu(rgb, 0, 256);
  net.probability_1024(rgb);  // warm-up: allocator, mkldnn primitives, shape cache
  // CPU seconds of every thread per image: the figure that load from other processes disturbs
  // least (wall time on a loaded 2-core machine says little).
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) benchmark::DoNotOptimize(net.probability_1024(rgb));
  state.counters["cpu_s_per_image"] =
      (process_cpu_seconds() - cpu0) / static_cast<double>(state.iterations());
  state.counters["threads"] = semat::models::runtime_threads();
}
BENCHMARK_CAPTURE(BM_IsNet1024, fp32, std::string("fp32"))->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
// --precision bf16 (AMX / AVX512-BF16 CPUs; refused with an error elsewhere).
BENCHMARK_CAPTURE(BM_IsNet1024, bf16, std::string("bf16"))->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
