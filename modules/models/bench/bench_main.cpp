// Entry point of semat_torch_bench: the runtime set-up the semat CLI uses (every core, large
// blocks kept in the heap; semat/models/runtime.h) before Google Benchmark runs, so the figures
// are those of the program.
#include <benchmark/benchmark.h>

#include "semat/models/runtime.h"

int main(int argc, char** argv) {
  semat::models::configure_runtime(semat::models::runtime_options_from_environment());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
