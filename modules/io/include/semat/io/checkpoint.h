// Reading model weights without Python or LibTorch: PyTorch `torch.save` archives (the zip format
// written since PyTorch 1.6) and `.safetensors` files become a flat, ordered list of named
// tensors. Nothing here depends on LibTorch, so the loader can be tested and fuzzed on its own;
// the model code copies TensorData into torch tensors.
//
// Every problem with a checkpoint's content raises semat::CheckpointError with one line naming
// the file and what is wrong; a file that cannot be opened or written raises semat::IoError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace semat::io {

/// Element types a checkpoint tensor can have.
enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool };

/// Bytes per element (1 for Bool).
std::size_t dtype_size(DType dtype);
/// The safetensors spelling: "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL".
const char* dtype_name(DType dtype);
/// Inverse of dtype_name; false when `name` is not one of them.
bool dtype_from_name(const std::string& name, DType* dtype);

/// "[1, 8, 8, 64]"; "[]" for a scalar.
std::string shape_to_string(const std::vector<std::int64_t>& shape);

/// One tensor, always materialised as a contiguous row-major array of little-endian elements
/// (views and storage offsets of torch.save archives are resolved when loading).
struct TensorData {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;  ///< empty for a scalar
  std::vector<std::uint8_t> bytes;  ///< numel() * dtype_size(dtype) bytes

  std::int64_t numel() const;
};

/// The tensors of a checkpoint, in file order (pickle order for .pth, data order for
/// .safetensors), with wrapper keys already removed (see load_checkpoint).
struct Checkpoint {
  std::string source;  ///< the path (or the name given to load_checkpoint_from_memory)
  std::string format;  ///< "pytorch-zip" or "safetensors"
  std::vector<TensorData> tensors;
  std::map<std::string, std::string> metadata;  ///< safetensors "__metadata__"; empty for .pth
  /// What was unwrapped to reach the state dict, e.g. "['model']" and/or "prefix 'module.'";
  /// empty when the file held a plain state dict.
  std::vector<std::string> unwrapped;

  /// nullptr when absent.
  const TensorData* find(const std::string& name) const;
  /// Throws CheckpointError naming the key and the file when absent.
  const TensorData& at(const std::string& name) const;
};

/// Loads a checkpoint, detecting the format from its first bytes:
///   - PyTorch zip archive: `<archive>/data.pkl` (a pickle of the state dict), one stored
///     (uncompressed) entry `<archive>/data/<key>` per storage; ZIP64 archives are supported.
///   - safetensors: 8-byte little-endian header length, JSON header, tensor data.
/// A top-level {"model": state_dict} or {"state_dict": state_dict} wrapper is unwrapped, and a
/// "module." prefix present on every key is stripped. The file is memory-mapped and each tensor
/// is copied out once, so peak memory is about the size of the tensors.
Checkpoint load_checkpoint(const std::string& path);

/// Same as load_checkpoint on bytes already in memory; `source` names them in errors.
Checkpoint load_checkpoint_from_memory(const std::uint8_t* data, std::size_t size,
                                       const std::string& source);

/// The bytes of a .safetensors file holding `tensors` in the given order, with `metadata` as its
/// "__metadata__" (omitted when empty). Throws CheckpointError on duplicate or empty names or a
/// byte count that does not match the shape.
std::vector<std::uint8_t> encode_safetensors(
    const std::vector<TensorData>& tensors,
    const std::map<std::string, std::string>& metadata = {});

/// Writes encode_safetensors(tensors, metadata) to `path` atomically (temp file + rename).
/// The file is assembled in memory first, so this briefly needs the tensors' size again.
void save_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// A tensor a model expects to find in a checkpoint.
struct ExpectedTensor {
  std::string name;
  std::vector<std::int64_t> shape;
};

/// Parses a key list, one `name<TAB>[d0, d1, ...]` per line ("[]" for a scalar); blank lines and
/// lines starting with '#' are skipped. `source` names the text in errors (CheckpointError with
/// the line number).
std::vector<ExpectedTensor> parse_key_list(const std::string& text, const std::string& source);
/// parse_key_list on the content of a file.
std::vector<ExpectedTensor> load_key_list(const std::string& path);

/// Which names compare_tensors looks at.
struct TensorCheckOptions {
  /// When non-empty, only checkpoint and expected names starting with one of these prefixes are
  /// compared (e.g. {"image_encoder."} to check one sub-module).
  std::vector<std::string> only_prefixes;
  /// Checkpoint names starting with one of these prefixes may be present without being expected.
  std::vector<std::string> allow_unexpected_prefixes;
  /// Expected names starting with one of these prefixes may be absent; when present they must
  /// have the expected shape like any other (parts a checkpoint may or may not carry).
  std::vector<std::string> optional_prefixes;
};

/// The differences between a checkpoint and what a model expects.
struct TensorCheckReport {
  struct Mismatch {
    std::string name;
    std::vector<std::int64_t> expected, actual;
  };
  std::vector<std::string> missing;     ///< expected, absent from the checkpoint
  std::vector<std::string> unexpected;  ///< in the checkpoint, not expected
  std::vector<Mismatch> mismatched;     ///< present with another shape

  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  /// One line listing every problem, e.g. "2 missing (a, b); 1 mis-shaped (c: expected [3]
  /// got [4])"; empty when ok().
  std::string summary() const;
};

/// Compares names and shapes (not dtypes) of `checkpoint` against `expected`.
TensorCheckReport compare_tensors(const Checkpoint& checkpoint,
                                  const std::vector<ExpectedTensor>& expected,
                                  const TensorCheckOptions& options = {});

/// compare_tensors, throwing one CheckpointError naming the file and every problem.
void check_tensors(const Checkpoint& checkpoint, const std::vector<ExpectedTensor>& expected,
                   const TensorCheckOptions& options = {});

}  // namespace semat::io
