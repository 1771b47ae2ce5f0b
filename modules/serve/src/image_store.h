// Decoded images uploaded once (POST /v1/images) and matted many times. Bounded in bytes and
// time: the least recently used image is evicted when a new one does not fit, and images expire
// `ttl` after their last use.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <opencv2/core/mat.hpp>

namespace semat::serve {

class ImageStore {
 public:
  using Clock = std::chrono::steady_clock;
  /// Called (outside the lock) with the id of every image that leaves the store.
  using OnRemove = std::function<void(const std::string& id)>;

  ImageStore(std::size_t max_bytes, std::chrono::seconds ttl, OnRemove on_remove = {});

  /// Stores `image` (shared, not copied) and returns a new random id. Throws InvalidArgument when
  /// the image alone is larger than the whole store.
  std::string put(const cv::Mat& image);
  /// The image, refreshing its expiry; nullopt when unknown or expired.
  std::optional<cv::Mat> get(const std::string& id);
  /// False when unknown.
  bool erase(const std::string& id);
  /// Removes expired images; returns how many.
  std::size_t sweep();

  std::size_t size() const;
  std::size_t bytes() const;
  std::chrono::seconds ttl() const { return ttl_; }

 private:
  struct Entry {
    cv::Mat image;
    std::size_t bytes = 0;
    Clock::time_point last_used;
    std::list<std::string>::iterator lru;  // position in lru_, most recent at the front
  };
  void remove_locked(std::string id, std::vector<std::string>& removed);  // by value: callers pass lru_ elements
  void notify(const std::vector<std::string>& removed);

  const std::size_t max_bytes_;
  const std::chrono::seconds ttl_;
  OnRemove on_remove_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;
  std::size_t bytes_ = 0;
};

}  // namespace semat::serve
