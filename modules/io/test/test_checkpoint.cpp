#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "../src/unpickler.h"
#include "../src/zip_reader.h"
#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/io/image_io.h"

namespace fs = std::filesystem;

namespace semat::io {
namespace {

const std::string kData = std::string(SEMAT_TEST_DATA) + "/sam_tiny/";

fs::path fresh_dir(const std::string& name) {
  const fs::path d =
      fs::temp_directory_path() / ("semat_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void put_le(std::vector<std::uint8_t>* b, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b->push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::uint32_t crc32(const std::vector<std::uint8_t>& data) {
  std::uint32_t c = 0xffffffffu;
  for (std::uint8_t byte : data) {
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// A minimal ZIP writer (stored entries, optional ZIP64 records), the way torch.save lays out
// its archive, so the reader is also tested on input it did not see from PyTorch.
struct ZipItem {
  std::string name;
  std::vector<std::uint8_t> data;
  std::uint16_t method = 0;
};

std::vector<std::uint8_t> make_zip(const std::vector<ZipItem>& items, bool zip64 = false) {
  std::vector<std::uint8_t> out, cd;
  const std::uint32_t sat = zip64 ? 0xffffffffu : 0;
  for (const ZipItem& it : items) {
    const std::uint64_t local = out.size();
    const std::uint32_t crc = crc32(it.data);
    put_le(&out, 0x04034b50, 4);
    put_le(&out, zip64 ? 45 : 20, 2);
    put_le(&out, 0, 2);
    put_le(&out, it.method, 2);
    put_le(&out, 0, 4);  // time, date
    put_le(&out, crc, 4);
    put_le(&out, zip64 ? sat : it.data.size(), 4);
    put_le(&out, zip64 ? sat : it.data.size(), 4);
    put_le(&out, it.name.size(), 2);
    put_le(&out, zip64 ? 20 : 0, 2);
    out.insert(out.end(), it.name.begin(), it.name.end());
    if (zip64) {
      put_le(&out, 1, 2);
      put_le(&out, 16, 2);
      put_le(&out, it.data.size(), 8);
      put_le(&out, it.data.size(), 8);
    }
    out.insert(out.end(), it.data.begin(), it.data.end());

    put_le(&cd, 0x02014b50, 4);
    put_le(&cd, 45, 2);
    put_le(&cd, zip64 ? 45 : 20, 2);
    put_le(&cd, 0, 2);
    put_le(&cd, it.method, 2);
    put_le(&cd, 0, 4);
    put_le(&cd, crc, 4);
    put_le(&cd, zip64 ? sat : it.data.size(), 4);
    put_le(&cd, zip64 ? sat : it.data.size(), 4);
    put_le(&cd, it.name.size(), 2);
    put_le(&cd, zip64 ? 28 : 0, 2);
    put_le(&cd, 0, 2);  // comment
    put_le(&cd, 0, 2);  // disk
    put_le(&cd, 0, 2);  // internal attributes
    put_le(&cd, 0, 4);  // external attributes
    put_le(&cd, zip64 ? sat : local, 4);
    cd.insert(cd.end(), it.name.begin(), it.name.end());
    if (zip64) {
      put_le(&cd, 1, 2);
      put_le(&cd, 24, 2);
      put_le(&cd, it.data.size(), 8);
      put_le(&cd, it.data.size(), 8);
      put_le(&cd, local, 8);
    }
  }
  const std::uint64_t cd_offset = out.size();
  out.insert(out.end(), cd.begin(), cd.end());
  if (zip64) {
    const std::uint64_t rec = out.size();
    put_le(&out, 0x06064b50, 4);
    put_le(&out, 44, 8);
    put_le(&out, 45, 2);
    put_le(&out, 45, 2);
    put_le(&out, 0, 4);
    put_le(&out, 0, 4);
    put_le(&out, items.size(), 8);
    put_le(&out, items.size(), 8);
    put_le(&out, cd.size(), 8);
    put_le(&out, cd_offset, 8);
    put_le(&out, 0x07064b50, 4);
    put_le(&out, 0, 4);
    put_le(&out, rec, 8);
    put_le(&out, 1, 4);
  }
  put_le(&out, 0x06054b50, 4);
  put_le(&out, 0, 4);
  put_le(&out, zip64 ? 0xffff : items.size(), 2);
  put_le(&out, zip64 ? 0xffff : items.size(), 2);
  put_le(&out, zip64 ? sat : cd.size(), 4);
  put_le(&out, zip64 ? sat : cd_offset, 4);
  put_le(&out, 0, 2);
  return out;
}

// Writes pickle protocol 2 the way torch.save does for a state dict.
class Pickle {
 public:
  std::vector<std::uint8_t> bytes;

  Pickle() { op('\x80').op('\x02'); }  // PROTO 2

  Pickle& op(char c) {
    bytes.push_back(static_cast<std::uint8_t>(c));
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    op('c');
    for (char c : module + "\n" + name + "\n") op(c);
    return *this;
  }
  Pickle& str(const std::string& s) {
    op('X');
    put_le(&bytes, s.size(), 4);
    for (char c : s) op(c);
    return *this;
  }
  Pickle& integer(std::int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      put_le(&bytes, static_cast<std::uint64_t>(v), 1);
    } else if (v >= 0 && v < 65536) {
      op('M');
      put_le(&bytes, static_cast<std::uint64_t>(v), 2);
    } else {
      op('\x8a');
      put_le(&bytes, 8, 1);
      put_le(&bytes, static_cast<std::uint64_t>(v), 8);
    }
    return *this;
  }
  Pickle& ints(const std::vector<std::int64_t>& v) {
    op('(');
    for (std::int64_t x : v) integer(x);
    return op('t');
  }
  Pickle& empty_ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& storage_type, const std::string& key, std::int64_t numel,
                 std::int64_t offset, const std::vector<std::int64_t>& size,
                 const std::vector<std::int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel);
    op('t').op('Q');
    integer(offset).ints(size).ints(stride).op('\x89').empty_ordered_dict();
    return op('t').op('R');
  }
  std::vector<std::uint8_t> stop() {
    op('.');
    return bytes;
  }
};

template <typename T>
std::vector<std::uint8_t> raw(const std::vector<T>& v) {
  std::vector<std::uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// {"model": OrderedDict(module.<...>: views of three storages), "epoch": 3}, as a training
// script wrapping a DataParallel model would save it.
std::vector<std::uint8_t> wrapped_state_dict_pickle(const std::string& map_global = "OrderedDict") {
  Pickle p;
  p.op('}').str("model").global("collections", map_global).op(')').op('R').op('(');
  p.str("module.a").tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  p.str("module.b").tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3});  // a transposed view
  p.str("module.c").tensor("LongStorage", "1", 10, 2, {4}, {2});        // offset + step 2
  p.str("module.d").tensor("LongStorage", "1", 10, 9, {}, {});          // scalar
  p.str("module.e").global("torch._utils", "_rebuild_parameter").op('(');
  p.tensor("HalfStorage", "2", 4, 0, {2, 2}, {2, 1}).op('\x88').empty_ordered_dict().op('t');
  p.op('R');
  p.str("module.f").tensor("FloatStorage", "0", 6, 0, {0, 3}, {3, 1});  // empty
  p.op('u');
  // OrderedDict._metadata, set through BUILD like torch.nn.Module.state_dict() does.
  p.op('}').str("_metadata").op('}').op('s').op('b');
  p.op('s').str("epoch").integer(3).op('s');
  return p.stop();
}

std::vector<ZipItem> archive_items(const std::vector<std::uint8_t>& pickle) {
  return {{"archive/data.pkl", pickle},
          {"archive/byteorder", {'l', 'i', 't', 't', 'l', 'e'}},
          {"archive/data/0", raw(std::vector<float>{0, 1, 2, 3, 4, 5})},
          {"archive/data/1", raw(std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})},
          {"archive/data/2", raw(std::vector<std::uint16_t>{0x3c00, 0x4000, 0x4200, 0x4400})},
          {"archive/version", {'3', '\n'}}};
}

Checkpoint load_bytes(const std::vector<std::uint8_t>& bytes, const std::string& name = "mem") {
  return load_checkpoint_from_memory(bytes.data(), bytes.size(), name);
}

template <typename T>
std::vector<T> values(const TensorData& t) {
  std::vector<T> v(t.bytes.size() / sizeof(T));
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}

// Runs `fn`, which must throw CheckpointError whose message contains every one of `parts`.
template <typename Fn>
void expect_checkpoint_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no CheckpointError";
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
  }
}

void expect_same_tensors(const Checkpoint& a, const Checkpoint& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const TensorData& t : a.tensors) {
    const TensorData* u = b.find(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(t.dtype, u->dtype) << t.name;
    EXPECT_EQ(t.shape, u->shape) << t.name;
    EXPECT_TRUE(t.bytes == u->bytes) << t.name;
  }
}

}  // namespace

TEST(Checkpoint, FixturePthAndSafetensorsHoldTheSameTensors) {
  const auto t0 = std::chrono::steady_clock::now();
  const Checkpoint pth = load_checkpoint(kData + "sam_tiny.pth");
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("sam_tiny.pth: %zu tensors loaded in %.2f ms\n", pth.tensors.size(), ms);
  const Checkpoint st = load_checkpoint(kData + "sam_tiny.safetensors");
  EXPECT_EQ(pth.format, "pytorch-zip");
  EXPECT_EQ(st.format, "safetensors");
  EXPECT_TRUE(pth.unwrapped.empty());
  EXPECT_EQ(pth.tensors.size(), 188u);
  EXPECT_EQ(pth.tensors.front().name, "image_encoder.pos_embed");  // pickle order is kept
  expect_same_tensors(pth, st);
  for (const TensorData& t : pth.tensors) {
    EXPECT_EQ(t.dtype, DType::F32) << t.name;
    EXPECT_EQ(t.bytes.size(), static_cast<std::size_t>(t.numel()) * 4) << t.name;
  }
  EXPECT_EQ(st.metadata.at("format"), "pt");
}

TEST(Checkpoint, FixtureShapesFollowTheTinyConfig) {
  const nlohmann::json fixture = nlohmann::json::parse(read_file(kData + "fixture.json"));
  const nlohmann::json& cfg = fixture.at("config");
  const std::int64_t grid =
      cfg.at("img_size").get<std::int64_t>() / cfg.at("patch_size").get<std::int64_t>();
  const std::int64_t embed = cfg.at("embed_dim").get<std::int64_t>();
  const std::int64_t patch = cfg.at("patch_size").get<std::int64_t>();
  const Checkpoint ckpt = load_checkpoint(kData + "sam_tiny.pth");
  EXPECT_EQ(ckpt.at("image_encoder.pos_embed").shape,
            (std::vector<std::int64_t>{1, grid, grid, embed}));
  EXPECT_EQ(ckpt.at("image_encoder.pos_embed").shape, (std::vector<std::int64_t>{1, 8, 8, 64}));
  EXPECT_EQ(ckpt.at("image_encoder.patch_embed.proj.weight").shape,
            (std::vector<std::int64_t>{embed, 3, patch, patch}));
  EXPECT_EQ(ckpt.at("mask_decoder.iou_token.weight").shape,
            (std::vector<std::int64_t>{1, cfg.at("prompt_embed_dim").get<std::int64_t>()}));
  expect_checkpoint_error([&] { ckpt.at("no.such.key"); }, {"no.such.key", "sam_tiny.pth"});
}

TEST(Checkpoint, HandMadeArchiveWithWrapperViewsAndModulePrefix) {
  for (bool zip64 : {false, true}) {
    SCOPED_TRACE(zip64 ? "zip64" : "zip");
    const Checkpoint c = load_bytes(make_zip(archive_items(wrapped_state_dict_pickle()), zip64));
    EXPECT_EQ(c.unwrapped, (std::vector<std::string>{"['model']", "prefix 'module.'"}));
    ASSERT_EQ(c.tensors.size(), 6u);
    EXPECT_EQ(c.tensors[0].name, "a");
    EXPECT_EQ(values<float>(c.at("a")), (std::vector<float>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(c.at("b").shape, (std::vector<std::int64_t>{3, 2}));
    EXPECT_EQ(values<float>(c.at("b")), (std::vector<float>{0, 3, 1, 4, 2, 5}));
    EXPECT_EQ(c.at("c").dtype, DType::I64);
    EXPECT_EQ(values<std::int64_t>(c.at("c")), (std::vector<std::int64_t>{2, 4, 6, 8}));
    EXPECT_TRUE(c.at("d").shape.empty());
    EXPECT_EQ(values<std::int64_t>(c.at("d")), (std::vector<std::int64_t>{9}));
    EXPECT_EQ(c.at("e").dtype, DType::F16);
    EXPECT_EQ(values<std::uint16_t>(c.at("e")),
              (std::vector<std::uint16_t>{0x3c00, 0x4000, 0x4200, 0x4400}));
    EXPECT_EQ(c.at("f").shape, (std::vector<std::int64_t>{0, 3}));
    EXPECT_TRUE(c.at("f").bytes.empty());
  }
}

TEST(Checkpoint, StateDictWrapperAndPlainDict) {
  Pickle p;
  p.op('}').str("state_dict").op('}').str("w").tensor("FloatStorage", "0", 6, 0, {6}, {1});
  p.op('s').op('s');
  const Checkpoint c = load_bytes(make_zip(archive_items(p.stop())));
  EXPECT_EQ(c.unwrapped, (std::vector<std::string>{"['state_dict']"}));
  EXPECT_EQ(values<float>(c.at("w")), (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

TEST(Checkpoint, ArchiveErrorsNameTheProblem) {
  auto items = archive_items(wrapped_state_dict_pickle());
  expect_checkpoint_error(
      [&] { load_bytes(make_zip(archive_items(wrapped_state_dict_pickle("Counter")))); },
      {"mem", "collections.Counter"});
  {
    auto missing = items;
    missing.erase(missing.begin() + 3);  // archive/data/1
    expect_checkpoint_error([&] { load_bytes(make_zip(missing)); },
                            {"missing storage entry 'archive/data/1'"});
  }
  {
    auto compressed = items;
    compressed[0].method = 8;
    expect_checkpoint_error([&] { load_bytes(make_zip(compressed)); },
                            {"archive/data.pkl", "compressed"});
  }
  {
    auto big_endian = items;
    big_endian[1].data = {'b', 'i', 'g'};
    expect_checkpoint_error([&] { load_bytes(make_zip(big_endian)); }, {"byte order 'big'"});
  }
  {
    auto short_storage = items;
    short_storage[2].data.resize(8);
    expect_checkpoint_error([&] { load_bytes(make_zip(short_storage)); },
                            {"archive/data/0", "too few"});
  }
  {
    Pickle p;
    p.op('}').str("w").tensor("LongStorage", "1", 10, 2, {4}, {3}).op('s');
    expect_checkpoint_error([&] { load_bytes(make_zip(archive_items(p.stop()))); },
                            {"tensor 'w'", "reaches past"});
  }
  {
    Pickle p;
    p.op('}').str("w").integer(3).op('s');
    expect_checkpoint_error([&] { load_bytes(make_zip(archive_items(p.stop()))); },
                            {"'w' is a int, not a tensor"});
  }
  {
    Pickle p;
    p.op('S');  // STRING: protocol 0, never written by torch.save
    expect_checkpoint_error([&] { load_bytes(make_zip(archive_items(p.stop()))); },
                            {"archive/data.pkl", "unsupported pickle opcode 0x53", "offset 2"});
  }
  {
    Pickle p;
    p.global("os", "system");
    expect_checkpoint_error([&] { load_bytes(make_zip(archive_items(p.stop()))); },
                            {"unsupported global 'os.system'"});
  }
  {
    Pickle p;
    p.op('}');  // no STOP
    expect_checkpoint_error([&] { load_bytes(make_zip(archive_items(p.bytes))); },
                            {"truncated pickle"});
  }
  expect_checkpoint_error(
      [&] {
        load_bytes(make_zip({{"x/version", {'3'}}}));
      },
      {"without <archive>/data.pkl"});
}

TEST(Checkpoint, TruncatedEmptyAndForeignFiles) {
  const std::vector<std::uint8_t> pth = read_file(kData + "sam_tiny.pth");
  const std::vector<std::uint8_t> st = read_file(kData + "sam_tiny.safetensors");
  for (std::size_t keep :
       {std::size_t{0}, std::size_t{5}, std::size_t{100}, pth.size() / 2, pth.size() - 1}) {
    expect_checkpoint_error([&] { load_checkpoint_from_memory(pth.data(), keep, "cut.pth"); },
                            {"cut.pth"});
  }
  for (std::size_t keep : {std::size_t{12}, std::size_t{5000}, st.size() - 1}) {
    expect_checkpoint_error(
        [&] { load_checkpoint_from_memory(st.data(), keep, "cut.safetensors"); },
        {"cut.safetensors"});
  }
  const fs::path dir = fresh_dir("ckpt_bad");
  std::ofstream((dir / "empty.pth").string()).close();
  expect_checkpoint_error([&] { load_checkpoint((dir / "empty.pth").string()); },
                          {"empty.pth", "empty file"});
  std::ofstream((dir / "text.pth").string()) << "this is not a checkpoint at all\n";
  expect_checkpoint_error([&] { load_checkpoint((dir / "text.pth").string()); },
                          {"text.pth", "not a checkpoint"});
  std::ofstream((dir / "legacy.pth").string()) << "\x80\x02\x8a\x0alegacy magic number";
  expect_checkpoint_error([&] { load_checkpoint((dir / "legacy.pth").string()); },
                          {"legacy.pth", "legacy"});
  EXPECT_THROW(load_checkpoint((dir / "missing.pth").string()), IoError);
  EXPECT_THROW(load_checkpoint(dir.string()), IoError);
  fs::remove_all(dir);
}

TEST(Safetensors, RoundTripKeepsTensorsOrderAndMetadata) {
  const Checkpoint pth = load_checkpoint(kData + "sam_tiny.pth");
  const fs::path dir = fresh_dir("ckpt_st");
  const std::string path = (dir / "out.safetensors").string();
  std::vector<TensorData> tensors = pth.tensors;
  tensors.push_back({"extra.half", DType::F16, {3}, {1, 2, 3, 4, 5, 6}});
  tensors.push_back({"extra.flag", DType::Bool, {}, {1}});
  save_safetensors(path, tensors, {{"format", "pt"}, {"note", "semat"}});
  const Checkpoint back = load_checkpoint(path);
  EXPECT_EQ(back.format, "safetensors");
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(back.tensors[i].name, tensors[i].name);  // data order is the given order
    EXPECT_EQ(back.tensors[i].dtype, tensors[i].dtype);
    EXPECT_EQ(back.tensors[i].shape, tensors[i].shape);
    EXPECT_TRUE(back.tensors[i].bytes == tensors[i].bytes);
  }
  EXPECT_EQ(back.metadata,
            (std::map<std::string, std::string>{{"format", "pt"}, {"note", "semat"}}));
  const std::vector<std::uint8_t> bytes = read_file(path);
  EXPECT_EQ((bytes[0] | bytes[1] << 8) % 8, 0);  // data 8-byte aligned
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);

  expect_checkpoint_error(
      [&] {
        save_safetensors(path, {{"x", DType::F32, {2}, {0, 0, 0}}});
      },
      {"'x'", "needs 8"});
  expect_checkpoint_error(
      [&] {
        encode_safetensors({{"x", DType::U8, {1}, {0}}, {"x", DType::U8, {1}, {0}}});
      },
      {"duplicate", "'x'"});
  fs::remove_all(dir);
}

TEST(Safetensors, BadHeadersAreCheckpointErrors) {
  auto file = [](const std::string& header, std::size_t data_bytes) {
    std::vector<std::uint8_t> b;
    put_le(&b, header.size(), 8);
    b.insert(b.end(), header.begin(), header.end());
    b.resize(b.size() + data_bytes);
    return b;
  };
  EXPECT_EQ(load_bytes(file(R"({"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8))
                .at("a")
                .shape,
            (std::vector<std::int64_t>{2}));
  expect_checkpoint_error(
      [&] { load_bytes(file(R"({"a":{"dtype":"Q8","shape":[2],"data_offsets":[0,2]}})", 2)); },
      {"tensor 'a'", "unsupported dtype"});
  expect_checkpoint_error(
      [&] { load_bytes(file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)); },
      {"tensor 'a'", "12 expected"});
  expect_checkpoint_error(
      [&] { load_bytes(file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)); },
      {"tensor 'a'", "truncated"});
  expect_checkpoint_error([&] { load_bytes(file(R"({"a":{"dtype":)", 0)); },
                          {"bad safetensors header"});
  expect_checkpoint_error(
      [&] { load_bytes(file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0)); },
      {"negative dimension"});
}

// Issue #14: hostile headers. A value nested 300k levels deep used to overflow the stack while
// the error message dumped it; overlapping entries used to materialise the same bytes many times.
TEST(Safetensors, HostileHeadersAreCleanErrors) {
  auto file = [](const std::string& header, std::size_t data_bytes) {
    std::vector<std::uint8_t> b;
    put_le(&b, header.size(), 8);
    b.insert(b.end(), header.begin(), header.end());
    b.resize(b.size() + data_bytes);
    return b;
  };
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  for (const std::string field : {"dtype", "shape", "data_offsets"}) {
    std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    const std::string key = "\"" + field + "\":";
    const std::size_t at = h.find(key) + key.size();
    const std::size_t end = h.find_first_of(",}", h[at] == '[' ? h.find(']', at) : at);
    h.replace(at, end - at, deep);
    expect_checkpoint_error([&] { load_bytes(file(h, 4)); }, {"nested deeper than"});
  }
  expect_checkpoint_error(
      [&] { load_bytes(file(R"({"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}})", 4)); },
      {"malformed JSON"});
  // Two entries over the same bytes, and a third inside them.
  expect_checkpoint_error(
      [&] {
        load_bytes(file(R"({"a":{"dtype":"U8","shape":[64],"data_offsets":[0,64]},)"
                        R"("b":{"dtype":"U8","shape":[64],"data_offsets":[0,64]}})",
                        64));
      },
      {"overlaps"});
  expect_checkpoint_error(
      [&] {
        load_bytes(file(R"({"a":{"dtype":"U8","shape":[64],"data_offsets":[0,64]},)"
                        R"("b":{"dtype":"U8","shape":[8],"data_offsets":[8,16]}})",
                        64));
      },
      {"overlaps", "'b'"});
  // Adjacent entries and empty ones are fine.
  const Checkpoint ok = load_bytes(file(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                                        R"("e":{"dtype":"U8","shape":[0],"data_offsets":[8,8]},)"
                                        R"("b":{"dtype":"U8","shape":[8],"data_offsets":[8,16]}})",
                                        16));
  EXPECT_EQ(ok.tensors.size(), 3u);
}

// Issue #14: 3,000 entries that are all views of one storage used to be copied 3,000 times.
TEST(Checkpoint, ViewsOfOneStorageCannotAmplifyMemory) {
  auto archive = [](int views) {
    Pickle p;
    p.empty_ordered_dict().op('(');
    for (int i = 0; i < views; ++i)
      p.str("w" + std::to_string(i)).tensor("FloatStorage", "0", 16384, 0, {128, 128}, {128, 1});
    p.op('u');
    std::vector<ZipItem> items = {{"archive/data.pkl", p.stop()},
                                  {"archive/data/0", std::vector<std::uint8_t>(16384 * 4)},
                                  {"archive/version", {'3', '\n'}}};
    return make_zip(items);
  };
  // Tied weights (a few views of one storage) still load.
  EXPECT_EQ(load_bytes(archive(2)).tensors.size(), 2u);
  const std::vector<std::uint8_t> hostile = archive(3000);
  expect_checkpoint_error([&] { load_bytes(hostile); }, {"twice the file", "views of shared storages"});
}

TEST(Checkpoint, StrictCheckerNamesEveryProblem) {
  const Checkpoint ckpt = load_checkpoint(kData + "sam_tiny.pth");
  std::vector<ExpectedTensor> expected;
  for (const TensorData& t : ckpt.tensors) expected.push_back({t.name, t.shape});
  EXPECT_TRUE(compare_tensors(ckpt, expected).ok());
  EXPECT_NO_THROW(check_tensors(ckpt, expected));

  expected.erase(expected.begin() + 1);  // image_encoder.patch_embed.proj.weight: unexpected
  expected.erase(expected.begin() + 1);  // image_encoder.patch_embed.proj.bias: unexpected
  expected.push_back({"mask_decoder.extra.weight", {4}});  // missing
  expected[0].shape = {1, 16, 16, 64};                     // pos_embed: mis-shaped
  const TensorCheckReport r = compare_tensors(ckpt, expected);
  EXPECT_EQ(r.missing, (std::vector<std::string>{"mask_decoder.extra.weight"}));
  EXPECT_EQ(r.unexpected, (std::vector<std::string>{"image_encoder.patch_embed.proj.weight",
                                                    "image_encoder.patch_embed.proj.bias"}));
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_EQ(r.mismatched[0].actual, (std::vector<std::int64_t>{1, 8, 8, 64}));
  expect_checkpoint_error([&] { check_tensors(ckpt, expected); },
                          {"sam_tiny.pth", "1 missing (mask_decoder.extra.weight)",
                           "2 unexpected (image_encoder.patch_embed.proj.weight, "
                           "image_encoder.patch_embed.proj.bias)",
                           "image_encoder.pos_embed: expected [1, 16, 16, 64] got [1, 8, 8, 64]"});

  TensorCheckOptions only_decoder;
  only_decoder.only_prefixes = {"mask_decoder."};
  const TensorCheckReport d = compare_tensors(ckpt, expected, only_decoder);
  EXPECT_EQ(d.missing.size(), 1u);
  EXPECT_TRUE(d.unexpected.empty());
  EXPECT_TRUE(d.mismatched.empty());

  TensorCheckOptions allow;
  allow.allow_unexpected_prefixes = {"image_encoder.patch_embed."};
  EXPECT_TRUE(compare_tensors(ckpt, expected, allow).unexpected.empty());
}

TEST(Checkpoint, KeyListsOfTheOfficialModels) {
  const auto b = load_key_list(kData + "keys_vit_b.txt");
  const auto l = load_key_list(kData + "keys_vit_l.txt");
  const auto h = load_key_list(kData + "keys_vit_h.txt");
  EXPECT_EQ(b.size(), 314u);
  EXPECT_EQ(l.size(), 482u);
  EXPECT_EQ(h.size(), 594u);
  EXPECT_EQ(b[0].name, "image_encoder.pos_embed");
  EXPECT_EQ(b[0].shape, (std::vector<std::int64_t>{1, 64, 64, 768}));
  EXPECT_EQ(l[0].shape, (std::vector<std::int64_t>{1, 64, 64, 1024}));
  EXPECT_EQ(h[0].shape, (std::vector<std::int64_t>{1, 64, 64, 1280}));

  // The tiny fixture uses the official layout with fewer blocks: every one of its names exists
  // in ViT-B, and only image-encoder blocks are absent.
  const Checkpoint tiny = load_checkpoint(kData + "sam_tiny.safetensors");
  const TensorCheckReport r = compare_tensors(tiny, b);
  EXPECT_TRUE(r.unexpected.empty());
  EXPECT_EQ(r.missing.size(), 314u - 188u);
  for (const std::string& m : r.missing) EXPECT_EQ(m.rfind("image_encoder.blocks.", 0), 0u) << m;

  const auto parsed = parse_key_list("# comment\n\na.b\t[]\nc\t[2, 3]\r\n", "inline");
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_TRUE(parsed[0].shape.empty());
  EXPECT_EQ(parsed[1].shape, (std::vector<std::int64_t>{2, 3}));
  expect_checkpoint_error([] { parse_key_list("a\t[1]\nb [2]\n", "k.txt"); }, {"k.txt", "line 2"});
  expect_checkpoint_error([] { parse_key_list("a\t[1, x]\n", "k.txt"); },
                          {"k.txt", "line 1", "'x'"});
}

// Random corruption of the fixture must end in a clean CheckpointError (or a successful load
// when only tensor bytes were hit): no crash, hang or other exception type.
TEST(Checkpoint, FuzzedArchivesFailCleanly) {
  std::vector<std::uint8_t> pth = read_file(kData + "sam_tiny.pth");
  const detail::ZipReader zip(pth.data(), pth.size(), "fixture");
  const detail::ZipEntry* pkl = zip.find("sam_tiny/data.pkl");
  ASSERT_NE(pkl, nullptr);
  const std::size_t pkl_begin = pkl->data_offset, pkl_size = pkl->size;
  const std::size_t tail_begin = pth.size() - 20000;  // central directory and end records
  std::mt19937_64 rng(4);
  auto below = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  int loaded = 0, rejected = 0;
  auto attempt = [&](const std::uint8_t* data, std::size_t size) {
    try {
      load_checkpoint_from_memory(data, size, "fuzz.pth");
      ++loaded;
    } catch (const CheckpointError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "unexpected exception: " << e.what();
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  // In-place byte changes keep the archive layout, so they reach the pickle and tensor code.
  for (int i = 0; i < 1500; ++i) {
    std::vector<std::pair<std::size_t, std::uint8_t>> saved;
    const int edits = 1 + static_cast<int>(below(4));
    for (int k = 0; k < edits; ++k) {
      const int region = static_cast<int>(below(4));
      const std::size_t pos = region < 2    ? pkl_begin + below(pkl_size)
                              : region == 2 ? tail_begin + below(pth.size() - tail_begin)
                                            : below(pth.size());
      saved.emplace_back(pos, pth[pos]);
      if (below(2))
        pth[pos] ^= static_cast<std::uint8_t>(1u << below(8));
      else
        pth[pos] = static_cast<std::uint8_t>(rng());
    }
    attempt(pth.data(), pth.size());
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) pth[it->first] = it->second;
  }
  for (int i = 0; i < 300; ++i) attempt(pth.data(), below(pth.size()));
  // The pickle alone, with insertions and deletions too.
  const std::vector<std::uint8_t> pickle(pth.begin() + pkl_begin,
                                         pth.begin() + pkl_begin + pkl_size);
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::uint8_t> p = pickle;
    const int edits = 1 + static_cast<int>(below(3));
    for (int k = 0; k < edits; ++k) {
      const std::size_t pos = below(p.size());
      switch (below(4)) {
        case 0:
          p[pos] ^= static_cast<std::uint8_t>(1u << below(8));
          break;
        case 1:
          p[pos] = static_cast<std::uint8_t>(rng());
          break;
        case 2:
          p.insert(p.begin() + pos, static_cast<std::uint8_t>(rng()));
          break;
        default:
          p.erase(p.begin() + pos);
          break;
      }
    }
    if (below(8) == 0) p.resize(below(p.size()));
    try {
      detail::unpickle_state_dict(p.data(), p.size(), "fuzz data.pkl");
      ++loaded;
    } catch (const CheckpointError&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "unexpected exception: " << e.what();
    }
  }
  // The safetensors header.
  std::vector<std::uint8_t> st = read_file(kData + "sam_tiny.safetensors");
  for (int i = 0; i < 500; ++i) {
    const std::size_t pos = below(8 + 21464);
    const std::uint8_t old = st[pos];
    st[pos] = static_cast<std::uint8_t>(rng());
    attempt(st.data(), st.size());
    st[pos] = old;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("fuzz: %d loaded, %d rejected in %.2f s\n", loaded, rejected, s);
  EXPECT_GT(rejected, 1000);
}

}  // namespace semat::io
