// A fixed pool of worker threads fed by a bounded FIFO. Submitting never blocks: a full queue is
// reported to the caller, which answers 503, so load beyond capacity costs nothing but a reply.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace semat::serve {

class WorkQueue {
 public:
  /// One unit of work. `cancelled` is set by a caller that stopped waiting; a job that has not
  /// started by then is skipped.
  struct Job {
    std::function<void()> fn;
    std::atomic<bool> cancelled{false};
  };

  /// `workers` >= 1 threads; at most `capacity` jobs wait beyond the ones running.
  WorkQueue(int workers, int capacity);
  ~WorkQueue();  ///< shutdown()
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  /// Queues `fn`; returns null when the queue is full or shutting down.
  std::shared_ptr<Job> try_submit(std::function<void()> fn);
  /// Runs what is queued, then joins the workers. Idempotent.
  void shutdown();

  int waiting() const;
  int running() const { return running_.load(); }

 private:
  void loop();

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;
  bool stopping_ = false;
  std::atomic<int> running_{0};
  std::vector<std::thread> threads_;
};

}  // namespace semat::serve
