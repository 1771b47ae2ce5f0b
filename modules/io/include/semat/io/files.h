// Writing outputs without ever leaving half-written files: everything is written to a temporary
// name in the destination folder and renamed into place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace semat::io {

/// Creates `dir` (and parents) if needed and checks that a file can be created in it.
/// Throws IoError naming the folder otherwise.
void ensure_writable_dir(const std::string& dir);

/// Writes `bytes` to `path` atomically: temp file in the same folder, fsync, rename.
void write_file_atomic(const std::string& path, const std::vector<std::uint8_t>& bytes);

/// A group of files that appear together or not at all. add() writes each file to a temporary
/// name; commit() renames them all into place. Destroying an uncommitted set removes its
/// temporary files, so an error half-way leaves the destination as it was.
class StagedFiles {
 public:
  StagedFiles() = default;
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  ~StagedFiles();

  void add(const std::string& path, const std::vector<std::uint8_t>& bytes);
  void commit();
  /// Final paths, in the order added.
  std::vector<std::string> paths() const;

 private:
  struct Entry {
    std::string temp, final;
  };
  std::vector<Entry> entries_;
  bool committed_ = false;
};

}  // namespace semat::io
