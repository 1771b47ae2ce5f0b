#include "safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "semat/core/error.h"
#include "semat/io/files.h"
#include "semat/io/json.h"

namespace semat::io {
namespace detail {
namespace {

// Header sizes beyond this are not plausible (the header of ViT-H is ~60 KB) and would only
// make a corrupted length allocate gigabytes.
constexpr std::uint64_t kMaxHeader = 100u << 20;

std::uint64_t checked_numel(const std::vector<std::int64_t>& shape, const std::string& where) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape) {
    SEMAT_CHECK(d >= 0, CheckpointError, where << ": negative dimension " << d);
    SEMAT_CHECK(d == 0 || n <= std::numeric_limits<std::uint64_t>::max() / 2 /
                                   static_cast<std::uint64_t>(d) / 8,
                CheckpointError, where << ": shape " << shape_to_string(shape) << " too large");
    n *= static_cast<std::uint64_t>(d);
  }
  return n;
}

}  // namespace

void read_safetensors(const std::uint8_t* data, std::size_t size, Checkpoint* out,
                      const std::function<void(const std::uint8_t*, std::size_t)>& release) {
  const std::string where = "checkpoint '" + out->source + "'";
  SEMAT_CHECK(size >= 8, CheckpointError, where << ": truncated safetensors file");
  std::uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<std::uint64_t>(data[i]) << (8 * i);
  SEMAT_CHECK(header_len <= kMaxHeader && header_len <= size - 8, CheckpointError,
              where << ": safetensors header length " << header_len << " exceeds the file size "
                    << size << " (truncated file?)");
  const std::uint8_t* data_begin = data + 8 + header_len;
  const std::uint64_t data_size = size - 8 - header_len;

  nlohmann::json header;
  try {
    header = parse_json(std::string_view(reinterpret_cast<const char*>(data + 8), header_len),
                        where + ": bad safetensors header");
  } catch (const DataError& e) {
    throw CheckpointError(e.what());
  }
  SEMAT_CHECK(header.is_object(), CheckpointError,
              where << ": safetensors header is not a JSON object");

  struct Item {
    std::uint64_t begin;
    TensorData tensor;
  };
  std::vector<Item> items;
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const nlohmann::json& v = it.value();
      if (name == "__metadata__") {
        SEMAT_CHECK(v.is_object(), CheckpointError, where << ": __metadata__ is not an object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          SEMAT_CHECK(m.value().is_string(), CheckpointError,
                      where << ": __metadata__ value '" << m.key() << "' is not a string");
          out->metadata[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      const std::string what = where + ": tensor '" + name + "'";
      SEMAT_CHECK(
          v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
          CheckpointError, what << " needs dtype, shape and data_offsets");
      const nlohmann::json& dt = v.at("dtype");
      const nlohmann::json& sh = v.at("shape");
      const nlohmann::json& off = v.at("data_offsets");
      Item item;
      item.tensor.name = name;
      SEMAT_CHECK(dt.is_string() && dtype_from_name(dt.get<std::string>(), &item.tensor.dtype),
                  CheckpointError, what << ": unsupported dtype " << describe_json(dt));
      SEMAT_CHECK(sh.is_array() && sh.size() <= 64, CheckpointError,
                  what << ": bad shape " << describe_json(sh));
      for (const nlohmann::json& d : sh) {
        SEMAT_CHECK(d.is_number_integer(), CheckpointError, what << ": bad shape " << describe_json(sh));
        item.tensor.shape.push_back(d.get<std::int64_t>());
      }
      SEMAT_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() &&
                      off[1].is_number_unsigned(),
                  CheckpointError, what << ": bad data_offsets " << describe_json(off));
      const std::uint64_t begin = off[0].get<std::uint64_t>(), end = off[1].get<std::uint64_t>();
      const std::uint64_t nbytes =
          checked_numel(item.tensor.shape, what) * dtype_size(item.tensor.dtype);
      SEMAT_CHECK(begin <= end && end <= data_size, CheckpointError,
                  what << ": data_offsets [" << begin << ", " << end << "] outside the "
                       << data_size << " data bytes (truncated file?)");
      SEMAT_CHECK(end - begin == nbytes, CheckpointError,
                  what << ": " << end - begin << " bytes for shape "
                       << shape_to_string(item.tensor.shape) << " of "
                       << dtype_name(item.tensor.dtype) << " (" << nbytes << " expected)");
      item.begin = begin;
      items.push_back(std::move(item));
    }
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(where + ": bad safetensors header: " + e.what());
  }
  // The JSON object is read in name order; the file order is the data order.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) {
                     // Empty tensors first at equal offsets, so they never seem to overlap.
                     return a.begin != b.begin ? a.begin < b.begin : a.tensor.numel() < b.tensor.numel();
                   });
  // Entries must not share bytes: overlapping entries would let a small file materialise each
  // byte many times (memory amplification), so what is copied never exceeds the data size.
  std::uint64_t previous_end = 0;
  std::string previous_name;
  for (const Item& item : items) {
    SEMAT_CHECK(item.begin >= previous_end, CheckpointError,
                where << ": tensor '" << item.tensor.name << "' overlaps tensor '" << previous_name
                      << "' in the data section (each tensor needs its own bytes)");
    previous_end = item.begin + static_cast<std::uint64_t>(item.tensor.numel()) * dtype_size(item.tensor.dtype);
    previous_name = item.tensor.name;
  }
  out->tensors.reserve(items.size());
  for (Item& item : items) {
    const std::size_t n =
        static_cast<std::size_t>(item.tensor.numel()) * dtype_size(item.tensor.dtype);
    // Appended to reserved space: one pass over the bytes, no zero fill first.
    // In slices, so that a multi-GB tensor never holds both its mapped pages and its copy.
    item.tensor.bytes.reserve(n);
    constexpr std::size_t kSlice = std::size_t{64} << 20;
    for (std::size_t done = 0; done < n; done += kSlice) {
      const std::size_t k = std::min(kSlice, n - done);
      const std::uint8_t* from = data_begin + item.begin + done;
      item.tensor.bytes.insert(item.tensor.bytes.end(), from, from + k);
      if (release) release(from, k);
    }
    out->tensors.push_back(std::move(item.tensor));
  }
}

}  // namespace detail

std::vector<std::uint8_t> encode_safetensors(const std::vector<TensorData>& tensors,
                                             const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::unordered_set<std::string> seen;
  std::uint64_t offset = 0;
  for (const TensorData& t : tensors) {
    SEMAT_CHECK(!t.name.empty() && t.name != "__metadata__", CheckpointError,
                "safetensors: bad tensor name '" << t.name << "'");
    SEMAT_CHECK(seen.insert(t.name).second, CheckpointError,
                "safetensors: duplicate tensor name '" << t.name << "'");
    const std::uint64_t nbytes =
        detail::checked_numel(t.shape, "safetensors: tensor '" + t.name + "'") *
        dtype_size(t.dtype);
    SEMAT_CHECK(t.bytes.size() == nbytes, CheckpointError,
                "safetensors: tensor '" << t.name << "' has " << t.bytes.size() << " bytes, shape "
                                        << shape_to_string(t.shape) << " of " << dtype_name(t.dtype)
                                        << " needs " << nbytes);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  // Readers may map the data and cast it in place, so the data starts 8-byte aligned
  // (the format allows trailing spaces in the header for this).
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<std::uint8_t> bytes;
  bytes.reserve(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<std::uint8_t>(text.size() >> (8 * i)));
  bytes.insert(bytes.end(), text.begin(), text.end());
  for (const TensorData& t : tensors) bytes.insert(bytes.end(), t.bytes.begin(), t.bytes.end());
  return bytes;
}

void save_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, encode_safetensors(tensors, metadata));
}

}  // namespace semat::io
