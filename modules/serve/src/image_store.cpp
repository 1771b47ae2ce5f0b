#include "image_store.h"

#include <random>
#include <vector>

#include "semat/core/error.h"

namespace semat::serve {
namespace {

// 128 random bits: ids are capabilities (whoever knows one can use the image), so they must not
// be guessable from earlier ones.
std::string random_id() {
  static thread_local std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 4; ++i) {
    std::uint32_t v = rd();
    for (int k = 0; k < 8; ++k, v >>= 4) id += hex[v & 15];
  }
  return id;
}

}  // namespace

ImageStore::ImageStore(std::size_t max_bytes, std::chrono::seconds ttl, OnRemove on_remove)
    : max_bytes_(max_bytes), ttl_(ttl), on_remove_(std::move(on_remove)) {}

std::string ImageStore::put(const cv::Mat& image) {
  const std::size_t bytes = image.total() * image.elemSize();
  SEMAT_CHECK(bytes <= max_bytes_, InvalidArgument,
              "the image needs " << (bytes >> 20) << " MiB, more than the server's whole image store ("
                                 << (max_bytes_ >> 20) << " MiB, --max-store-mb)");
  std::vector<std::string> removed;
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (bytes_ + bytes > max_bytes_ && !lru_.empty()) remove_locked(lru_.back(), removed);
    do id = random_id(); while (entries_.count(id));
    lru_.push_front(id);
    entries_[id] = Entry{image, bytes, Clock::now(), lru_.begin()};
    bytes_ += bytes;
  }
  notify(removed);
  return id;
}

std::optional<cv::Mat> ImageStore::get(const std::string& id) {
  std::vector<std::string> removed;
  std::optional<cv::Mat> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) {
      const auto now = Clock::now();
      if (now - it->second.last_used > ttl_) {
        remove_locked(id, removed);
      } else {
        it->second.last_used = now;
        lru_.splice(lru_.begin(), lru_, it->second.lru);
        out = it->second.image;
      }
    }
  }
  notify(removed);
  return out;
}

bool ImageStore::erase(const std::string& id) {
  std::vector<std::string> removed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!entries_.count(id)) return false;
    remove_locked(id, removed);
  }
  notify(removed);
  return true;
}

std::size_t ImageStore::sweep() {
  std::vector<std::string> removed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = Clock::now();
    // lru_ is ordered by last use, so the expired ones are all at the back.
    while (!lru_.empty() && now - entries_.at(lru_.back()).last_used > ttl_)
      remove_locked(lru_.back(), removed);
  }
  notify(removed);
  return removed.size();
}

std::size_t ImageStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

std::size_t ImageStore::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

void ImageStore::remove_locked(std::string id, std::vector<std::string>& removed) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
  removed.push_back(id);
}

void ImageStore::notify(const std::vector<std::string>& removed) {
  if (!on_remove_) return;
  for (const auto& id : removed) on_remove_(id);
}

}  // namespace semat::serve
