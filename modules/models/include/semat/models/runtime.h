// Process-wide settings the models run fastest with. Library code never changes them on its own
// (constructing a predictor has no process-wide effect): a program calls configure_runtime()
// once, early, before its first model runs (the semat CLI in main(), the benchmarks at start-up,
// the torch tests before their first test). Torch-free header.
#pragma once

namespace semat::models {

struct RuntimeOptions {
  /// LibTorch intra-op threads (matrix products, convolutions, the attention heads of one image).
  /// > 0: exactly that many. 0: every logical core; LibTorch's own default is one thread per
  /// *physical* core, a single thread on this project's 2-vCPU machines. < 0: leave LibTorch's
  /// choice (it follows OMP_NUM_THREADS).
  int threads = 0;
  /// glibc allocator policy: serve blocks up to 512 MB from the heap and trim it only past 1 GB
  /// free. By default glibc maps every block over 128 KB afresh and unmaps it on free, so each
  /// activation tensor pays page faults on first touch (~0.5 ms per 4 MB tensor, a fifth of the
  /// SAM mask decoder's time); kept in the heap, the blocks are reused across layers and calls.
  /// The price is memory that stays with the process after a large inference. false: glibc's
  /// policy is left as it is.
  bool keep_large_blocks = true;
};

/// The defaults, adjusted by the environment: OMP_NUM_THREADS set -> threads = -1 (LibTorch
/// already follows it); else SEMAT_THREADS=N (N > 0) -> threads = N.
RuntimeOptions runtime_options_from_environment();

/// Applies `options` to the whole process: LibTorch's intra-op thread count and glibc's mallopt
/// thresholds. Call it before models run, from one thread (LibTorch's thread pool is not
/// reconfigured while in use). Calling it again applies the new thread count.
void configure_runtime(const RuntimeOptions& options);

/// LibTorch's current intra-op thread count (what configure_runtime set, or its default).
int runtime_threads();

}  // namespace semat::models
