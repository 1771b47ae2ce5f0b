#include "work_queue.h"

namespace semat::serve {

WorkQueue::WorkQueue(int workers, int capacity) : capacity_(static_cast<std::size_t>(capacity)) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { loop(); });
}

WorkQueue::~WorkQueue() { shutdown(); }

std::shared_ptr<WorkQueue::Job> WorkQueue::try_submit(std::function<void()> fn) {
  auto job = std::make_shared<Job>();
  job->fn = std::move(fn);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return nullptr;
    // Jobs given up by their callers still occupy a slot until a worker pops them; drop them here
    // so an abandoned backlog cannot refuse fresh work.
    while (!jobs_.empty() && jobs_.front()->cancelled) jobs_.pop_front();
    if (jobs_.size() >= capacity_ + (static_cast<std::size_t>(threads_.size()) -
                                     static_cast<std::size_t>(running_.load())))
      return nullptr;
    jobs_.push_back(job);
  }
  cv_.notify_one();
  return job;
}

void WorkQueue::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  threads_.clear();
}

int WorkQueue::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(jobs_.size());
}

void WorkQueue::loop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
      ++running_;
    }
    if (!job->cancelled) job->fn();  // fn reports its own errors through its promise
    --running_;
  }
}

}  // namespace semat::serve
