#include "semat/io/checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <unordered_map>

#include "safetensors.h"
#include "semat/core/error.h"
#include "unpickler.h"
#include "zip_reader.h"

// Tensor bytes are copied verbatim from little-endian files.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "semat checkpoints need a little-endian host");

namespace semat::io {
namespace {

using Release = std::function<void(const std::uint8_t*, std::size_t)>;

// Read-only mapping of a whole file: the kernel pages tensors in as they are copied out, and
// the pages can be dropped again right after (see release), so a 2.5 GB checkpoint never
// occupies memory twice.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError("cannot open checkpoint '" + path + "': " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw IoError("cannot read checkpoint '" + path + "': not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      const int err = errno;
      ::close(fd);
      if (p == MAP_FAILED)
        throw IoError("cannot map checkpoint '" + path + "': " + std::strerror(err));
      data_ = static_cast<const std::uint8_t*>(p);
      ::madvise(p, size_, MADV_SEQUENTIAL);
    } else {
      ::close(fd);
    }
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

  // Drops the pages wholly inside [p, p + n) from this process. The mapping is private and
  // never written, so a later read of the same bytes simply faults them in again from the file.
  void release(const std::uint8_t* p, std::size_t n) const {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t begin = (static_cast<std::size_t>(p - data_) + page - 1) / page * page;
    const std::size_t end = static_cast<std::size_t>(p - data_) + n;
    if (end > begin + page)
      ::madvise(const_cast<std::uint8_t*>(data_) + begin, (end - begin) / page * page,
                MADV_DONTNEED);
  }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Copies the strided view `t` of `storage` (numel elements of elem bytes) into a contiguous
// row-major buffer; every index is checked against the storage first.
std::vector<std::uint8_t> materialize(const detail::PickledTensor& t, const std::uint8_t* storage,
                                      std::int64_t storage_numel, std::size_t elem,
                                      const std::string& what, const Release& release) {
  SEMAT_CHECK(t.offset >= 0, CheckpointError, what << ": negative storage offset " << t.offset);
  std::int64_t numel = 1;
  unsigned __int128 last = static_cast<unsigned __int128>(t.offset);  // highest index read
  for (std::size_t d = 0; d < t.size.size(); ++d) {
    SEMAT_CHECK(t.size[d] >= 0 && t.stride[d] >= 0, CheckpointError,
                what << ": bad size " << shape_to_string(t.size) << " / stride "
                     << shape_to_string(t.stride));
    if (t.size[d] == 0) numel = 0;
    if (numel != 0) {
      SEMAT_CHECK(t.size[d] <= storage_numel && numel <= storage_numel / t.size[d], CheckpointError,
                  what << ": shape " << shape_to_string(t.size) << " has more elements than its "
                       << storage_numel << "-element storage");
      numel *= t.size[d];
    }
    last += static_cast<unsigned __int128>(t.size[d] > 0 ? t.size[d] - 1 : 0) *
            static_cast<std::uint64_t>(t.stride[d]);
  }
  if (numel == 0) return {};
  SEMAT_CHECK(last < static_cast<unsigned __int128>(storage_numel), CheckpointError,
              what << ": view (offset " << t.offset << ", size " << shape_to_string(t.size)
                   << ", stride " << shape_to_string(t.stride) << ") reaches past its "
                   << storage_numel << "-element storage");
  const std::size_t bytes = static_cast<std::size_t>(numel) * elem;
  // Contiguous views (the usual case) are one memcpy; dimensions of size 1 have no meaningful
  // stride.
  bool contiguous = true;
  std::int64_t expect = 1;
  for (std::size_t d = t.size.size(); d-- > 0;) {
    if (t.size[d] != 1 && t.stride[d] != expect) contiguous = false;
    expect *= t.size[d];
  }
  const std::uint8_t* base = storage + static_cast<std::size_t>(t.offset) * elem;
  std::vector<std::uint8_t> out;
  if (contiguous) {
    // Appended to reserved space rather than copied over a zero-filled vector: one pass over the
    // bytes instead of two (the zero fill cost as much as the copy on a 375 MB checkpoint).
    // In slices, so that a multi-GB tensor never holds both its mapped pages and its copy.
    out.reserve(bytes);
    constexpr std::size_t kSlice = std::size_t{64} << 20;
    for (std::size_t done = 0; done < bytes; done += kSlice) {
      const std::size_t n = std::min(kSlice, bytes - done);
      out.insert(out.end(), base + done, base + done + n);
      if (release) release(base + done, n);
    }
    return out;
  }
  out.resize(bytes);
  const std::size_t rank = t.size.size();
  std::vector<std::int64_t> index(rank, 0);
  const std::int64_t inner = rank ? t.size[rank - 1] : 1;
  const std::size_t inner_stride = rank ? static_cast<std::size_t>(t.stride[rank - 1]) * elem : 0;
  std::uint8_t* dst = out.data();
  for (std::int64_t done = 0; done < numel; done += inner) {
    std::size_t src = 0;
    for (std::size_t d = 0; d + 1 < rank; ++d)
      src += static_cast<std::size_t>(index[d] * t.stride[d]) * elem;
    const std::uint8_t* s = base + src;
    for (std::int64_t i = 0; i < inner; ++i, s += inner_stride, dst += elem)
      std::memcpy(dst, s, elem);
    for (std::size_t d = rank - 1; d-- > 0;) {  // odometer over the outer dimensions
      if (++index[d] < t.size[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

void read_pytorch_zip(const std::uint8_t* data, std::size_t size, Checkpoint* out,
                      const Release& release) {
  const std::string where = "checkpoint '" + out->source + "'";
  const detail::ZipReader zip(data, size, out->source);
  // torch.save puts everything under one folder named after the file it first wrote.
  const detail::ZipEntry* pkl = nullptr;
  for (const detail::ZipEntry& e : zip.entries()) {
    const std::size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      SEMAT_CHECK(
          pkl == nullptr, CheckpointError,
          where << ": zip archive holds two pickles ('" << pkl->name << "', '" << e.name << "')");
      pkl = &e;
    }
  }
  SEMAT_CHECK(pkl != nullptr, CheckpointError,
              where << ": zip archive without <archive>/data.pkl, not a PyTorch checkpoint");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // "<archive>/"
  if (const detail::ZipEntry* bo = zip.find(prefix + "byteorder")) {
    const std::string order(reinterpret_cast<const char*>(zip.data(*bo)), bo->size);
    SEMAT_CHECK(order == "little", CheckpointError,
                where << ": byte order '" << order << "' is not supported (only little-endian)");
  }
  const detail::PickledStateDict dict =
      detail::unpickle_state_dict(zip.data(*pkl), pkl->size, where + ": " + pkl->name);

  std::vector<const std::uint8_t*> storage_data(dict.storages.size());
  for (std::size_t i = 0; i < dict.storages.size(); ++i) {
    const detail::PickledStorage& s = dict.storages[i];
    const std::string entry_name = prefix + "data/" + s.key;
    const detail::ZipEntry* e = zip.find(entry_name);
    SEMAT_CHECK(e != nullptr, CheckpointError,
                where << ": missing storage entry '" << entry_name << "'");
    SEMAT_CHECK(
        static_cast<std::uint64_t>(s.numel) <= e->size / dtype_size(s.dtype), CheckpointError,
        where << ": storage entry '" << entry_name << "' has " << e->size << " bytes, too few for "
              << s.numel << " " << dtype_name(s.dtype) << " elements");
    storage_data[i] = zip.data(*e);
  }
  out->format = "pytorch-zip";
  out->unwrapped = dict.unwrapped;
  out->tensors.reserve(dict.entries.size());
  // Entries may be views of one storage (tied weights), each copied out on its own. Thousands of
  // views of one large storage would turn a small file into gigabytes, so the copies together may
  // not exceed twice the file size (plus slack for tiny files); real checkpoints stay near 1x.
  const unsigned __int128 budget = static_cast<unsigned __int128>(size) * 2 + (std::uint64_t{1} << 20);
  unsigned __int128 materialized = 0;
  for (const auto& [name, index] : dict.entries) {
    const detail::PickledTensor& t = dict.tensors[index];
    const detail::PickledStorage& s = dict.storages[t.storage];
    // materialize() refuses views with more elements than their storage, so this is the most a
    // view can copy: its element count capped at the storage's.
    unsigned __int128 view_numel = 1;
    for (std::int64_t d : t.size)
      view_numel = std::min<unsigned __int128>(view_numel * static_cast<std::uint64_t>(std::max<std::int64_t>(d, 0)),
                                               static_cast<std::uint64_t>(s.numel));
    materialized += view_numel * dtype_size(s.dtype);
    SEMAT_CHECK(materialized <= budget, CheckpointError,
                where << ": its tensors would take more than twice the file's " << size
                      << " bytes once copied (tensor '" << name
                      << "' and earlier ones are views of shared storages); refusing a crafted file");
    TensorData td;
    td.name = name;
    td.dtype = s.dtype;
    td.shape = t.size;
    td.bytes = materialize(t, storage_data[t.storage], s.numel, dtype_size(s.dtype),
                           where + ": tensor '" + name + "'", release);
    out->tensors.push_back(std::move(td));
  }
}

// DataParallel / DistributedDataParallel save every key as "module.<key>".
void strip_module_prefix(Checkpoint* ckpt) {
  static const std::string kPrefix = "module.";
  if (ckpt->tensors.empty()) return;
  for (const TensorData& t : ckpt->tensors)
    if (t.name.size() <= kPrefix.size() || t.name.compare(0, kPrefix.size(), kPrefix) != 0) return;
  for (TensorData& t : ckpt->tensors) t.name.erase(0, kPrefix.size());
  ckpt->unwrapped.push_back("prefix 'module.'");
}

Checkpoint load_impl(const std::uint8_t* data, std::size_t size, const std::string& source,
                     const Release& release) {
  Checkpoint ckpt;
  ckpt.source = source;
  const std::string where = "checkpoint '" + source + "'";
  SEMAT_CHECK(size > 0, CheckpointError, where << ": empty file");
  SEMAT_CHECK(size >= 8, CheckpointError,
              where << ": " << size << " bytes, too small to be a checkpoint");
  std::uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<std::uint64_t>(data[i]) << (8 * i);
  if (data[0] == 'P' && data[1] == 'K' && data[2] <= 8 && data[3] <= 8) {
    read_pytorch_zip(data, size, &ckpt, release);
  } else if (size > 8 && data[8] == '{' && header_len >= 2) {
    ckpt.format = "safetensors";
    detail::read_safetensors(data, size, &ckpt, release);
  } else if (data[0] == 0x80 && data[1] <= 5) {
    throw CheckpointError(where +
                          ": legacy (pre-1.6) torch.save format; re-save it with a "
                          "recent PyTorch or convert it to .safetensors");
  } else {
    throw CheckpointError(where +
                          ": not a checkpoint (neither a PyTorch zip archive nor "
                          "safetensors)");
  }
  strip_module_prefix(&ckpt);
  return ckpt;
}

bool starts_with_any(const std::string& s, const std::vector<std::string>& prefixes) {
  for (const std::string& p : prefixes)
    if (s.compare(0, p.size(), p) == 0) return true;
  return false;
}

}  // namespace

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16:
      return 2;
    case DType::I8:
    case DType::U8:
    case DType::Bool:
      return 1;
  }
  return 1;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::F64:
      return "F64";
    case DType::I64:
      return "I64";
    case DType::I32:
      return "I32";
    case DType::I16:
      return "I16";
    case DType::I8:
      return "I8";
    case DType::U8:
      return "U8";
    case DType::Bool:
      return "BOOL";
  }
  return "?";
}

bool dtype_from_name(const std::string& name, DType* dtype) {
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64, DType::I32,
                  DType::I16, DType::I8, DType::U8, DType::Bool}) {
    if (name == dtype_name(d)) {
      *dtype = d;
      return true;
    }
  }
  return false;
}

std::string shape_to_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::int64_t TensorData::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

const TensorData* Checkpoint::find(const std::string& name) const {
  for (const TensorData& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorData& Checkpoint::at(const std::string& name) const {
  const TensorData* t = find(name);
  SEMAT_CHECK(t != nullptr, CheckpointError,
              "checkpoint '" << source << "': tensor '" << name << "' missing");
  return *t;
}

Checkpoint load_checkpoint(const std::string& path) {
  const MappedFile file(path);
  return load_impl(file.data(), file.size(), path,
                   [&file](const std::uint8_t* p, std::size_t n) { file.release(p, n); });
}

Checkpoint load_checkpoint_from_memory(const std::uint8_t* data, std::size_t size,
                                       const std::string& source) {
  return load_impl(data, size, source, nullptr);
}

std::vector<ExpectedTensor> parse_key_list(const std::string& text, const std::string& source) {
  std::vector<ExpectedTensor> out;
  std::istringstream in(text);
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const std::string where = "key list '" + source + "' line " + std::to_string(line_no);
    const std::size_t tab = line.find('\t');
    SEMAT_CHECK(tab != std::string::npos && tab > 0, CheckpointError,
                where << ": expected 'name<TAB>[d0, d1, ...]'");
    ExpectedTensor e;
    e.name = line.substr(0, tab);
    const std::string shape = line.substr(tab + 1);
    SEMAT_CHECK(shape.size() >= 2 && shape.front() == '[' && shape.back() == ']', CheckpointError,
                where << ": bad shape '" << shape << "'");
    std::istringstream dims(shape.substr(1, shape.size() - 2));
    std::string dim;
    while (std::getline(dims, dim, ',')) {
      const std::size_t b = dim.find_first_not_of(' '), en = dim.find_last_not_of(' ');
      SEMAT_CHECK(b != std::string::npos, CheckpointError,
                  where << ": bad shape '" << shape << "'");
      const std::string digits = dim.substr(b, en - b + 1);
      SEMAT_CHECK(
          digits.size() <= 18 && digits.find_first_not_of("0123456789") == std::string::npos,
          CheckpointError, where << ": bad dimension '" << digits << "'");
      e.shape.push_back(std::stoll(digits));
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<ExpectedTensor> load_key_list(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read key list '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_key_list(text.str(), path);
}

std::string TensorCheckReport::summary() const {
  std::ostringstream os;
  auto list = [&os](const std::vector<std::string>& names) {
    for (std::size_t i = 0; i < names.size(); ++i) os << (i ? ", " : "") << names[i];
  };
  const char* sep = "";
  if (!missing.empty()) {
    os << missing.size() << " missing (";
    list(missing);
    os << ")";
    sep = "; ";
  }
  if (!unexpected.empty()) {
    os << sep << unexpected.size() << " unexpected (";
    list(unexpected);
    os << ")";
    sep = "; ";
  }
  if (!mismatched.empty()) {
    os << sep << mismatched.size() << " mis-shaped (";
    for (std::size_t i = 0; i < mismatched.size(); ++i)
      os << (i ? ", " : "") << mismatched[i].name << ": expected "
         << shape_to_string(mismatched[i].expected) << " got "
         << shape_to_string(mismatched[i].actual);
    os << ")";
  }
  return os.str();
}

TensorCheckReport compare_tensors(const Checkpoint& checkpoint,
                                  const std::vector<ExpectedTensor>& expected,
                                  const TensorCheckOptions& options) {
  auto selected = [&](const std::string& name) {
    return options.only_prefixes.empty() || starts_with_any(name, options.only_prefixes);
  };
  std::unordered_map<std::string, const TensorData*> present;
  for (const TensorData& t : checkpoint.tensors)
    if (selected(t.name)) present.emplace(t.name, &t);
  TensorCheckReport report;
  std::unordered_map<std::string, bool> wanted;
  for (const ExpectedTensor& e : expected) {
    if (!selected(e.name)) continue;
    wanted.emplace(e.name, true);
    const auto it = present.find(e.name);
    if (it == present.end()) {
      if (!starts_with_any(e.name, options.optional_prefixes)) report.missing.push_back(e.name);
    } else if (it->second->shape != e.shape)
      report.mismatched.push_back({e.name, e.shape, it->second->shape});
  }
  for (const TensorData& t : checkpoint.tensors)
    if (selected(t.name) && !wanted.count(t.name) &&
        !starts_with_any(t.name, options.allow_unexpected_prefixes))
      report.unexpected.push_back(t.name);
  return report;
}

void check_tensors(const Checkpoint& checkpoint, const std::vector<ExpectedTensor>& expected,
                   const TensorCheckOptions& options) {
  const TensorCheckReport report = compare_tensors(checkpoint, expected, options);
  SEMAT_CHECK(
      report.ok(), CheckpointError,
      "checkpoint '" << checkpoint.source << "' does not match the model: " << report.summary());
}

}  // namespace semat::io
