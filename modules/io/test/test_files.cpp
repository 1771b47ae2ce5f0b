#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "semat/core/error.h"
#include "semat/io/files.h"
#include "semat/io/image_io.h"

namespace fs = std::filesystem;

namespace semat::io {
namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("semat_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

size_t count_entries(const fs::path& d) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(d), fs::directory_iterator()));
}

}  // namespace

TEST(Files, StagedFilesAppearOnlyOnCommit) {
  const fs::path d = fresh_dir("staged");
  {
    StagedFiles files;
    files.add((d / "a.bin").string(), {1, 2, 3});
    files.add((d / "b.bin").string(), {4});
    EXPECT_FALSE(fs::exists(d / "a.bin"));
    files.commit();
  }
  EXPECT_EQ(read_file((d / "a.bin").string()), (std::vector<std::uint8_t>{1, 2, 3}));
  EXPECT_EQ(count_entries(d), 2u);
  fs::remove_all(d);
}

TEST(Files, UncommittedFilesLeaveNothingBehind) {
  const fs::path d = fresh_dir("abandon");
  {
    StagedFiles files;
    files.add((d / "a.bin").string(), {1, 2, 3});
    EXPECT_EQ(count_entries(d), 1u);  // the temporary file
  }
  EXPECT_EQ(count_entries(d), 0u);
  fs::remove_all(d);
}

TEST(Files, AtomicWriteReplacesWholeFile) {
  const fs::path d = fresh_dir("atomic");
  write_file_atomic((d / "x").string(), {1, 2, 3, 4, 5});
  write_file_atomic((d / "x").string(), {9});
  EXPECT_EQ(read_file((d / "x").string()), (std::vector<std::uint8_t>{9}));
  EXPECT_EQ(count_entries(d), 1u);
  fs::remove_all(d);
}

TEST(Files, UnusableOutputFolderIsReported) {
  const fs::path d = fresh_dir("unwritable");
  std::ofstream(d / "file") << "x";
  EXPECT_THROW(ensure_writable_dir((d / "file" / "sub").string()), IoError);
  EXPECT_THROW(ensure_writable_dir((d / "file").string()), IoError);
  EXPECT_NO_THROW(ensure_writable_dir((d / "new" / "deeper").string()));
  fs::remove_all(d);
}

}  // namespace semat::io
