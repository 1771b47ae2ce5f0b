#include "semat/io/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "semat/core/error.h"

namespace fs = std::filesystem;

namespace semat::io {
namespace {

std::string temp_name_for(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  static const unsigned salt = std::random_device{}();
  const fs::path p(path);
  const std::string name = "." + p.filename().string() + ".tmp" + std::to_string(::getpid()) +
                           "_" + std::to_string(salt % 100000) + "_" + std::to_string(counter++);
  return (p.parent_path() / name).string();
}

void write_and_sync(const std::string& path, const std::vector<std::uint8_t>& bytes,
                    const std::string& final_path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw IoError("cannot write '" + final_path + "': " + std::strerror(errno) +
                  " (check that the output folder exists and is writable)");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      throw IoError("cannot write '" + final_path + "': " + std::strerror(err) +
                    " (is the disk full?)");
    }
    done += static_cast<size_t>(n);
  }
  const bool ok = ::fsync(fd) == 0;
  const int err = errno;
  if (::close(fd) != 0 || !ok) {
    ::unlink(path.c_str());
    throw IoError("cannot write '" + final_path + "': " + std::strerror(err));
  }
}

}  // namespace

void ensure_writable_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw IoError("cannot create output folder '" + dir + "': " +
                  (ec ? ec.message() : std::string("a file of that name exists")) +
                  " (choose another --out)");
  const std::string probe = temp_name_for((fs::path(dir) / "probe").string());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw IoError("output folder '" + dir + "' is not writable: " + std::strerror(errno) +
                  " (choose another --out or fix its permissions)");
  ::close(fd);
  ::unlink(probe.c_str());
}

void write_file_atomic(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  StagedFiles files;
  files.add(path, bytes);
  files.commit();
}

StagedFiles::~StagedFiles() {
  if (committed_) return;
  for (const Entry& e : entries_) ::unlink(e.temp.c_str());
}

void StagedFiles::add(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  if (committed_) throw StateError("StagedFiles::add after commit");
  Entry e{temp_name_for(path), path};
  write_and_sync(e.temp, bytes, path);
  entries_.push_back(std::move(e));
}

void StagedFiles::commit() {
  if (committed_) return;
  for (const Entry& e : entries_) {
    if (std::rename(e.temp.c_str(), e.final.c_str()) != 0)
      throw IoError("cannot rename into '" + e.final + "': " + std::strerror(errno));
  }
  committed_ = true;
  // The renames are durable once the folder entry is flushed.
  if (!entries_.empty()) {
    const std::string dir = fs::path(entries_.front().final).parent_path().string();
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
}

std::vector<std::string> StagedFiles::paths() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.final);
  return out;
}

}  // namespace semat::io
