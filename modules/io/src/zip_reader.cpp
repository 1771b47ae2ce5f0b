#include "zip_reader.h"

#include <algorithm>
#include <cstring>

#include "semat/core/error.h"

namespace semat::io::detail {
namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50;
constexpr std::uint32_t kCentralSig = 0x02014b50;
constexpr std::uint32_t kEocdSig = 0x06054b50;
constexpr std::uint32_t kZip64EocdSig = 0x06064b50;
constexpr std::uint32_t kZip64LocatorSig = 0x07064b50;
constexpr std::size_t kEocdSize = 22;
constexpr std::size_t kZip64LocatorSize = 20;
constexpr std::size_t kZip64EocdSize = 56;
constexpr std::size_t kCentralSize = 46;
constexpr std::size_t kLocalSize = 30;

std::uint16_t u16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }
std::uint32_t u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
std::uint64_t u64(const std::uint8_t* p) {
  return static_cast<std::uint64_t>(u32(p)) | static_cast<std::uint64_t>(u32(p + 4)) << 32;
}

}  // namespace

ZipReader::ZipReader(const std::uint8_t* data, std::size_t size, std::string source)
    : data_(data), size_(size), source_(std::move(source)) {
  const std::string where = "checkpoint '" + source_ + "': ";
  SEMAT_CHECK(size_ >= kEocdSize, CheckpointError,
              where << "truncated zip archive (" << size_ << " bytes)");
  // The end-of-central-directory record is the last thing in the file, followed only by a
  // comment of at most 64 KiB, so it is found by scanning backwards for a signature whose
  // comment length reaches exactly the end of the file.
  std::size_t eocd = std::string::npos;
  const std::size_t lowest = size_ - kEocdSize > 0xffff ? size_ - kEocdSize - 0xffff : 0;
  for (std::size_t pos = size_ - kEocdSize + 1; pos-- > lowest;) {
    if (u32(data_ + pos) == kEocdSig && pos + kEocdSize + u16(data_ + pos + 20) == size_) {
      eocd = pos;
      break;
    }
  }
  SEMAT_CHECK(eocd != std::string::npos, CheckpointError,
              where << "zip end-of-central-directory record not found (truncated file?)");
  const std::uint8_t* e = data_ + eocd;
  SEMAT_CHECK(u16(e + 4) == 0 && u16(e + 6) == 0, CheckpointError,
              where << "multi-disk zip archives are not supported");
  std::uint64_t count = u16(e + 10);
  std::uint64_t cd_size = u32(e + 12);
  std::uint64_t cd_offset = u32(e + 16);
  std::uint64_t cd_limit = eocd;  // the central directory ends before this offset
  // ZIP64 (archives over 4 GiB or with 65535+ entries): a locator right before the record
  // points at a 64-bit version of it.
  if (eocd >= kZip64LocatorSize && u32(data_ + eocd - kZip64LocatorSize) == kZip64LocatorSig) {
    const std::uint8_t* loc = data_ + eocd - kZip64LocatorSize;
    const std::uint64_t rec = u64(loc + 8);
    SEMAT_CHECK(rec <= eocd - kZip64LocatorSize && eocd - kZip64LocatorSize - rec >= kZip64EocdSize,
                CheckpointError, where << "bad zip64 end-of-central-directory locator");
    const std::uint8_t* z = data_ + rec;
    SEMAT_CHECK(u32(z) == kZip64EocdSig, CheckpointError,
                where << "zip64 end-of-central-directory record not found at offset " << rec);
    count = u64(z + 32);
    cd_size = u64(z + 40);
    cd_offset = u64(z + 48);
    cd_limit = rec;
  } else {
    SEMAT_CHECK(count != 0xffff && cd_size != 0xffffffffu && cd_offset != 0xffffffffu,
                CheckpointError,
                where << "zip64 archive without its zip64 end-of-central-directory locator");
  }
  SEMAT_CHECK(cd_offset <= cd_limit && cd_size <= cd_limit - cd_offset, CheckpointError,
              where << "zip central directory (offset " << cd_offset << ", " << cd_size
                    << " bytes) lies outside the file (truncated file?)");
  SEMAT_CHECK(count <= cd_size / kCentralSize, CheckpointError,
              where << "zip central directory too small for " << count << " entries");
  read_central_directory(cd_offset, cd_size, count);
}

void ZipReader::read_central_directory(std::uint64_t cd_offset, std::uint64_t cd_size,
                                       std::uint64_t count) {
  const std::string where = "checkpoint '" + source_ + "': ";
  entries_.reserve(static_cast<std::size_t>(count));
  std::uint64_t pos = cd_offset;
  const std::uint64_t end = cd_offset + cd_size;
  for (std::uint64_t i = 0; i < count; ++i) {
    SEMAT_CHECK(end - pos >= kCentralSize && u32(data_ + pos) == kCentralSig, CheckpointError,
                where << "bad zip central directory entry " << i << " at offset " << pos);
    const std::uint8_t* c = data_ + pos;
    const std::uint16_t flags = u16(c + 8);
    ZipEntry entry;
    entry.method = u16(c + 10);
    std::uint64_t compressed = u32(c + 20);
    std::uint64_t size = u32(c + 24);
    const std::size_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    std::uint64_t local = u32(c + 42);
    SEMAT_CHECK(end - pos - kCentralSize >= name_len + extra_len + comment_len, CheckpointError,
                where << "zip central directory entry " << i << " runs past its end");
    entry.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    // ZIP64 extended information: only the fields saturated in the fixed record are present,
    // in this order.
    const std::uint8_t* x = c + kCentralSize + name_len;
    const std::uint8_t* x_end = x + extra_len;
    while (x_end - x >= 4) {
      const std::uint16_t id = u16(x), len = u16(x + 2);
      SEMAT_CHECK(static_cast<std::size_t>(x_end - x - 4) >= len, CheckpointError,
                  where << "bad extra field in zip entry '" << entry.name << "'");
      if (id == 0x0001) {
        const std::uint8_t* f = x + 4;
        const std::uint8_t* f_end = f + len;
        auto take = [&](std::uint64_t* field) {
          SEMAT_CHECK(f_end - f >= 8, CheckpointError,
                      where << "short zip64 extra field in zip entry '" << entry.name << "'");
          *field = u64(f);
          f += 8;
        };
        if (size == 0xffffffffu) take(&size);
        if (compressed == 0xffffffffu) take(&compressed);
        if (local == 0xffffffffu) take(&local);
      }
      x += 4 + len;
    }
    SEMAT_CHECK((flags & 1) == 0, CheckpointError,
                where << "zip entry '" << entry.name << "' is encrypted");
    SEMAT_CHECK(entry.method != 0 || compressed == size, CheckpointError,
                where << "stored zip entry '" << entry.name << "' has compressed size "
                      << compressed << " != size " << size);
    // The local header repeats the name and may carry its own (padding) extra field, so the
    // data offset is only known from it. Its sizes may be zero (data-descriptor flag), so the
    // central directory's are used.
    SEMAT_CHECK(
        local <= cd_offset && cd_offset - local >= kLocalSize && u32(data_ + local) == kLocalSig,
        CheckpointError,
        where << "zip entry '" << entry.name << "': no local header at offset " << local);
    const std::uint8_t* l = data_ + local;
    const std::uint64_t header = kLocalSize + u16(l + 26) + static_cast<std::uint64_t>(u16(l + 28));
    SEMAT_CHECK(cd_offset - local >= header && compressed <= cd_offset - local - header,
                CheckpointError,
                where << "zip entry '" << entry.name << "' (" << compressed
                      << " bytes) runs past the end of the data (truncated file?)");
    SEMAT_CHECK(
        u16(l + 26) == name_len && std::memcmp(l + kLocalSize, entry.name.data(), name_len) == 0,
        CheckpointError,
        where << "zip entry '" << entry.name << "': local header names another file");
    entry.data_offset = local + header;
    entry.size = size;
    SEMAT_CHECK(by_name_.emplace(entry.name, entries_.size()).second, CheckpointError,
                where << "duplicate zip entry '" << entry.name << "'");
    entries_.push_back(std::move(entry));
    pos += kCentralSize + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

const std::uint8_t* ZipReader::data(const ZipEntry& entry) const {
  SEMAT_CHECK(entry.method == 0, CheckpointError,
              "checkpoint '" << source_ << "': zip entry '" << entry.name
                             << "' is compressed (method " << entry.method
                             << "); PyTorch checkpoints store entries uncompressed, re-save it "
                                "with torch.save instead of re-zipping it");
  return data_ + entry.data_offset;
}

}  // namespace semat::io::detail
