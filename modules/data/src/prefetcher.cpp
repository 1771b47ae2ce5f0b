// Prefetcher: workers claim indices in increasing order, at most `depth` past the consumer, and
// park finished results in a map; next() waits for exactly its index, so the output order never
// depends on which worker finished first.
#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "semat/data/training_set.h"

namespace semat::data {

struct Prefetcher::Impl {
  struct Result {
    TrainingSample sample;
    std::exception_ptr error;
  };
  Producer producer;
  int64_t next_out = 0;    // the index next() returns next
  int64_t next_claim = 0;  // the index the next free worker produces
  int64_t depth = 1;
  std::mutex mutex;
  std::condition_variable work_cv, ready_cv;
  std::map<int64_t, Result> ready;
  bool stop = false;
  std::vector<std::thread> threads;

  void run() {
    for (;;) {
      int64_t k;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_cv.wait(lock, [&] { return stop || next_claim < next_out + depth; });
        if (stop) return;
        k = next_claim++;
      }
      Result r;
      try {
        r.sample = producer(k);
      } catch (...) {
        r.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (stop) return;
        ready.emplace(k, std::move(r));
      }
      ready_cv.notify_all();
    }
  }
};

Prefetcher::Prefetcher(Producer producer, int64_t first, int workers, int depth)
    : impl_(std::make_unique<Impl>()) {
  impl_->producer = std::move(producer);
  impl_->next_out = impl_->next_claim = first;
  impl_->depth = std::max(1, depth);
  try {
    for (int i = 0; i < workers; ++i) impl_->threads.emplace_back([this] { impl_->run(); });
  } catch (...) {
    // The destructor does not run for a half-built object: stop the threads started so far.
    {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      impl_->stop = true;
    }
    impl_->work_cv.notify_all();
    for (std::thread& t : impl_->threads) t.join();
    throw;
  }
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->work_cv.notify_all();
  for (std::thread& t : impl_->threads) t.join();
}

TrainingSample Prefetcher::next() {
  Impl& m = *impl_;
  if (m.threads.empty()) return m.producer(m.next_out++);  // no workers: on the caller's thread
  Impl::Result r;
  {
    std::unique_lock<std::mutex> lock(m.mutex);
    m.ready_cv.wait(lock, [&] { return m.ready.count(m.next_out) > 0; });
    auto it = m.ready.find(m.next_out);
    r = std::move(it->second);
    m.ready.erase(it);
    ++m.next_out;
  }
  m.work_cv.notify_all();
  if (r.error) std::rethrow_exception(r.error);
  return std::move(r.sample);
}

}  // namespace semat::data
