// Training throughput on CPU: iterations per second of the full SEMat step (forward, frozen-SAM
// target, the three losses, backward, AdamW) at the model's own input size (1024 for ViT-B/L/H),
// random weights of the real shapes, generated scenes. Arguments: batch size, activation
// checkpointing (1 = the trainer's default). Peak RSS is the process's, so run one case per
// process for a clean memory figure:
//   semat_train_bench --benchmark_filter='Train/vit_b/1/1'
// Without checkpointing ViT-B needs 16.8 GB and ViT-L does not fit in 24 GB (the benchmark is
// killed), hence only the tiny and ViT-B cases run both ways.
#include <sys/resource.h>

#include <filesystem>
#include <string>

#include <benchmark/benchmark.h>

#include "semat/train/trainer.h"

namespace {

double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / (1024.0 * 1024.0);
}

void BM_Train(benchmark::State& state, const std::string& preset, int64_t size) {
  semat::train::TrainConfig c;
  c.model = preset;
  c.iterations = 3;
  c.batch_size = state.range(0);
  c.checkpoint_activations = state.range(1) != 0;
  c.warmup_iterations = 1;
  c.checkpoint_every = 1000;
  c.visual_every = 0;
  c.plot_every = 1000;
  c.print_every = 0;
  c.data.samples = 2;
  c.data.size = size;
  c.data.workers = 1;
  const auto out = std::filesystem::temp_directory_path() / ("semat_bench_train_" + preset);
  double seconds = 0, iterations = 0;
  for (auto _ : state) {
    semat::train::TrainOptions o;
    o.out_dir = out.string();
    semat::train::Trainer trainer(c, o);
    const auto r = trainer.run();  // includes the final checkpoint write
    seconds += r.seconds;
    iterations += static_cast<double>(r.losses.size());
    state.SetIterationTime(r.seconds / static_cast<double>(r.losses.size()));
  }
  std::filesystem::remove_all(out);
  state.counters["it_per_s"] = iterations / seconds;
  state.counters["samples_per_s"] = iterations * static_cast<double>(c.batch_size) / seconds;
  state.counters["peak_rss_GiB"] = peak_rss_gib();
}
BENCHMARK_CAPTURE(BM_Train, tiny, std::string("semat-tiny"), 256)
    ->Args({2, 0})
    ->Args({2, 1})
    ->Iterations(2)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Train, vit_b, std::string("semat-vit-b"), 1024)
    ->Args({1, 0})
    ->Args({1, 1})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Train, vit_l, std::string("semat-vit-l"), 1024)
    ->Args({1, 1})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kSecond);

}  // namespace
