#include "semat/models/runtime.h"

#include <ATen/Parallel.h>
#include <malloc.h>

#include <cstdlib>
#include <thread>

namespace semat::models {

RuntimeOptions runtime_options_from_environment() {
  RuntimeOptions o;
  if (std::getenv("OMP_NUM_THREADS") != nullptr) {
    o.threads = -1;
  } else if (const char* env = std::getenv("SEMAT_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) o.threads = n;
  }
  return o;
}

void configure_runtime(const RuntimeOptions& o) {
  if (o.keep_large_blocks) {
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1024 << 20);
  }
  int n = o.threads;
  if (n == 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n > 0) at::set_num_threads(n);
}

int runtime_threads() { return at::get_num_threads(); }

}  // namespace semat::models
