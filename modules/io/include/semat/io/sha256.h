// SHA-256 (FIPS 180-4), for checking downloaded model files against pinned hashes. Our own small
// implementation rather than OpenSSL's: it adds no dependency, and it hashes the 88 MB IS-Net
// model in well under a second, which is all a once-per-run check needs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace semat::io {

/// Incremental SHA-256: update() any number of times, then hex_digest() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  /// The 64 lowercase hex digits of the digest. Ends the computation: a later update() or
  /// hex_digest() throws StateError.
  std::string hex_digest();

 private:
  void block(const std::uint8_t* p);

  std::array<std::uint32_t, 8> h_;
  std::array<std::uint8_t, 64> buf_{};
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;  ///< bytes hashed so far
  bool done_ = false;
};

/// sha256 of `size` bytes, 64 lowercase hex digits.
std::string sha256_hex(const void* data, std::size_t size);

/// sha256 of a whole file, 64 lowercase hex digits, read in 1 MiB pieces. Throws IoError naming
/// the file if it cannot be opened or read.
std::string sha256_file(const std::string& path);

}  // namespace semat::io
