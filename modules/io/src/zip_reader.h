// A read-only view of a ZIP archive held in memory (or memory-mapped), enough for PyTorch
// checkpoints: stored (uncompressed) entries, ZIP64, no encryption. Internal to semat_io.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace semat::io::detail {

struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;       ///< 0 = stored; anything else is rejected by data()
  std::uint64_t size = 0;         ///< uncompressed size
  std::uint64_t data_offset = 0;  ///< offset of the entry's bytes in the archive
};

class ZipReader {
 public:
  /// Parses the central directory of the `size` bytes at `data` (which must outlive the reader).
  /// `source` names the archive in errors. Throws CheckpointError when the bytes are not a
  /// well-formed archive (truncated file, bad record, entry outside the file...).
  ZipReader(const std::uint8_t* data, std::size_t size, std::string source);

  /// Entries in central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  /// nullptr when absent.
  const ZipEntry* find(const std::string& name) const;
  /// Pointer to the bytes of a stored entry; throws CheckpointError for a compressed one.
  const std::uint8_t* data(const ZipEntry& entry) const;

 private:
  void read_central_directory(std::uint64_t cd_offset, std::uint64_t cd_size, std::uint64_t count);
  const std::uint8_t* data_;
  std::size_t size_;
  std::string source_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, std::size_t> by_name_;
};

}  // namespace semat::io::detail
