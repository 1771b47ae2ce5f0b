#include "semat/data/index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "semat/core/error.h"
#include "semat/io/json.h"

namespace semat::data {

using nlohmann::json;

json IndexRecord::to_json() const {
  json j = {{"image_id", image_id},   {"ann_id", ann_id},
            {"image", image},         {"width", width},
            {"height", height},       {"box", {box.x0, box.y0, box.x1, box.y1}},
            {"fused_ids", fused_ids}, {"fused_categories", fused_categories},
            {"score", score},         {"backend", backend},
            {"omega", omega},         {"area", area},
            {"alpha", alpha},         {"trimap", trimap}};
  if (!concat.empty()) j["concat"] = concat;
  return j;
}

IndexRecord IndexRecord::from_json(const json& j, const std::string& where) {
  IndexRecord r;
  try {
    r.image_id = j.at("image_id").get<std::int64_t>();
    r.ann_id = j.at("ann_id").get<std::int64_t>();
    r.image = j.at("image").get<std::string>();
    r.width = j.at("width").get<int>();
    r.height = j.at("height").get<int>();
    const json& b = j.at("box");
    r.box = Box{b.at(0).get<double>(), b.at(1).get<double>(), b.at(2).get<double>(),
                b.at(3).get<double>()};
    r.fused_ids = j.at("fused_ids").get<std::vector<std::int64_t>>();
    r.fused_categories = j.value("fused_categories", std::vector<std::string>{});
    r.score = j.at("score").get<double>();
    r.backend = j.at("backend").get<std::string>();
    r.omega = j.at("omega").get<double>();
    r.area = j.value("area", std::int64_t{0});
    r.alpha = j.at("alpha").get<std::string>();
    r.trimap = j.at("trimap").get<std::string>();
    r.concat = j.value("concat", std::string());
  } catch (const json::exception& e) {
    throw DataError(where + ": not an index record (" + e.what() +
                    "); was it written by semat build-dataset?");
  }
  return r;
}

std::string instance_stem(std::int64_t image_id, std::int64_t ann_id) {
  return std::to_string(image_id) + "_" + std::to_string(ann_id);
}

JournalWriter::JournalWriter(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  SEMAT_CHECK(fd_ >= 0, IoError,
              "cannot open '" << path << "' for appending: " << std::strerror(errno)
                              << " (check the --out folder's permissions)");
}

JournalWriter::~JournalWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void JournalWriter::append(const json& value) {
  // One write() per line: with O_APPEND the kernel places it whole at the end, so concurrent
  // appenders and crashes never interleave or split lines except for a torn tail.
  const std::string line = value.dump() + '\n';
  std::lock_guard<std::mutex> lock(mutex_);
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    SEMAT_CHECK(
        n > 0, IoError,
        "cannot append to '" << path_ << "': " << std::strerror(errno) << " (is the disk full?)");
    done += static_cast<size_t>(n);
  }
  SEMAT_CHECK(::fsync(fd_) == 0, IoError,
              "cannot flush '" << path_ << "': " << std::strerror(errno));
}

JournalContents read_journal(const std::string& path, bool repair) {
  JournalContents out;
  std::ifstream in(path, std::ios::binary);
  if (!in) return out;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  size_t end = text.rfind('\n');
  end = end == std::string::npos ? 0 : end + 1;
  if (end < text.size()) {
    out.torn_bytes = text.size() - end;
    if (repair) {
      SEMAT_CHECK(::truncate(path.c_str(), static_cast<off_t>(end)) == 0, IoError,
                  "cannot repair '" << path << "' (truncate): " << std::strerror(errno));
    }
  }
  size_t pos = 0;
  while (pos < end) {
    const size_t nl = text.find('\n', pos);
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    // Bounded parse (io::parse_json): the records are copied and converted later, which
    // recurses on nested values; a damaged or planted line must not crash a resumed run.
    json j;
    try {
      j = io::parse_json(line, path);
    } catch (const DataError&) {
      ++out.corrupt_lines;
      continue;
    }
    if (!j.is_object()) {
      ++out.corrupt_lines;
      continue;
    }
    out.lines.push_back(std::move(j));
  }
  return out;
}

bool png_file_complete(const std::string& path) {
  static const unsigned char kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const unsigned char kEnd[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  unsigned char head[8], tail[12];
  const bool ok = ::fstat(fd, &st) == 0 && st.st_size >= 8 + 12 && ::pread(fd, head, 8, 0) == 8 &&
                  ::pread(fd, tail, 12, st.st_size - 12) == 12 && std::memcmp(head, kSig, 8) == 0 &&
                  std::memcmp(tail, kEnd, 12) == 0;
  ::close(fd);
  return ok;
}

}  // namespace semat::data
