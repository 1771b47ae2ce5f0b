#include "unpickler.h"

#include <cstring>
#include <unordered_map>

#include "semat/core/error.h"

namespace semat::io::detail {
namespace {

enum class Kind : std::uint8_t {
  kNone,
  kBool,
  kInt,
  kFloat,
  kStr,
  kTuple,
  kList,
  kDict,
  kGlobal,
  kStorage,
  kTensor
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kStr:
      return "str";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

// The only callables a state dict needs. Anything else is refused at GLOBAL time.
enum class Global : std::uint8_t {
  kOrderedDict,
  kRebuildTensorV2,
  kRebuildTensor,
  kRebuildParameter,
  kRebuildParameterWithState,
  kStorageType
};

struct StorageName {
  const char* name;
  DType dtype;
};
constexpr StorageName kStorageNames[] = {
    {"FloatStorage", DType::F32},  {"HalfStorage", DType::F16}, {"BFloat16Storage", DType::BF16},
    {"DoubleStorage", DType::F64}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
    {"ShortStorage", DType::I16},  {"CharStorage", DType::I8},  {"ByteStorage", DType::U8},
    {"BoolStorage", DType::Bool},
};

// Objects live in one arena and refer to each other by index: shared references (memo) and
// mutation after sharing behave as in Python, cycles cannot leak and nothing recurses on
// destruction, whatever a corrupted pickle builds.
struct Obj {
  Kind kind = Kind::kNone;
  std::int64_t num = 0;  // int / bool value; storage or tensor index; Global
  double real = 0;
  DType dtype = DType::F32;        // storage-type globals
  std::string str;                 // str value; dotted name of a global
  std::vector<std::size_t> items;  // tuple / list elements; dict keys and values interleaved
  std::unordered_map<std::string, std::size_t> index;  // dict: key -> position in items
};

class Unpickler {
 public:
  Unpickler(const std::uint8_t* data, std::size_t size, const std::string& where)
      : data_(data), size_(size), where_(where) {}

  PickledStateDict run();

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw CheckpointError(where_ + ": " + what + " (pickle offset " + std::to_string(op_pos_) +
                          ")");
  }
  const std::uint8_t* take(std::size_t n) {
    if (size_ - pos_ < n) fail("truncated pickle");
    const std::uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  std::uint64_t take_le(std::size_t n) {
    const std::uint8_t* p = take(n);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
  }
  std::string take_line() {
    const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (!nl) fail("truncated pickle (unterminated GLOBAL)");
    const std::size_t n = static_cast<const std::uint8_t*>(nl) - (data_ + pos_);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n + 1;
    return s;
  }

  std::size_t make(Kind kind) {
    objs_.emplace_back();
    objs_.back().kind = kind;
    return objs_.size() - 1;
  }
  std::size_t make_int(Kind kind, std::int64_t v) {
    const std::size_t id = make(kind);
    objs_[id].num = v;
    return id;
  }
  std::size_t make_str(std::string s) {
    const std::size_t id = make(Kind::kStr);
    objs_[id].str = std::move(s);
    return id;
  }

  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::size_t pop() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    const std::size_t id = stack_.back();
    stack_.pop_back();
    return id;
  }
  std::size_t top() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    return stack_.back();
  }
  // Removes the objects above the innermost MARK and the mark itself.
  std::vector<std::size_t> pop_to_mark() {
    if (marks_.empty()) fail("pickle MARK missing");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<std::size_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Obj& expect(std::size_t id, Kind kind, const char* what) {
    if (objs_[id].kind != kind)
      fail(std::string(what) + ": expected " + kind_name(kind) + ", got " +
           kind_name(objs_[id].kind));
    return objs_[id];
  }

  std::string dict_key(std::size_t key) {
    const Obj& k = objs_[key];
    if (k.kind == Kind::kStr) return "s" + k.str;
    if (k.kind == Kind::kInt) return "i" + std::to_string(k.num);
    fail(std::string("unsupported dict key of type ") + kind_name(k.kind));
  }
  void set_item(std::size_t dict, std::size_t key, std::size_t value) {
    std::string k = dict_key(key);
    Obj& d = expect(dict, Kind::kDict, "SETITEM target");
    const auto it = d.index.find(k);
    if (it != d.index.end()) {
      d.items[it->second + 1] = value;
    } else {
      d.index.emplace(std::move(k), d.items.size());
      d.items.push_back(key);
      d.items.push_back(value);
    }
  }

  void global(const std::string& module, const std::string& name);
  std::size_t reduce(std::size_t callable, std::size_t args);
  std::size_t rebuild_tensor(const std::vector<std::size_t>& args);
  std::size_t persistent_load(std::size_t pid);
  std::vector<std::int64_t> int_tuple(std::size_t id, const char* what);
  PickledStateDict extract(std::size_t root);

  const std::uint8_t* data_;
  std::size_t size_;
  const std::string& where_;
  std::size_t pos_ = 0, op_pos_ = 0;
  std::vector<Obj> objs_;
  std::vector<std::size_t> stack_, marks_;
  std::unordered_map<std::uint64_t, std::size_t> memo_;
  std::unordered_map<std::string, std::size_t> storage_by_key_;
  PickledStateDict out_;
};

void Unpickler::global(const std::string& module, const std::string& name) {
  const std::size_t id = make(Kind::kGlobal);
  objs_[id].str = module + "." + name;
  Global g;
  if (module == "collections" && name == "OrderedDict") {
    g = Global::kOrderedDict;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    g = Global::kRebuildTensorV2;
  } else if (module == "torch._utils" && name == "_rebuild_tensor") {
    g = Global::kRebuildTensor;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    g = Global::kRebuildParameter;
  } else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") {
    g = Global::kRebuildParameterWithState;
  } else {
    g = Global::kStorageType;
    bool found = false;
    if (module == "torch") {
      for (const StorageName& s : kStorageNames) {
        if (name == s.name) {
          objs_[id].dtype = s.dtype;
          found = true;
        }
      }
    }
    if (!found)
      fail("unsupported global '" + objs_[id].str +
           "' (only plain tensor state dicts can be read)");
  }
  objs_[id].num = static_cast<std::int64_t>(g);
  stack_.push_back(id);
}

std::vector<std::int64_t> Unpickler::int_tuple(std::size_t id, const char* what) {
  const Obj& t = expect(id, Kind::kTuple, what);
  if (t.items.size() > 64) fail(std::string(what) + " has too many dimensions");
  std::vector<std::int64_t> v;
  for (std::size_t item : t.items) v.push_back(expect(item, Kind::kInt, what).num);
  return v;
}

std::size_t Unpickler::rebuild_tensor(const std::vector<std::size_t>& args) {
  PickledTensor t;
  t.storage = static_cast<std::size_t>(expect(args[0], Kind::kStorage, "tensor storage").num);
  t.offset = expect(args[1], Kind::kInt, "tensor storage offset").num;
  t.size = int_tuple(args[2], "tensor size");
  t.stride = int_tuple(args[3], "tensor stride");
  if (t.size.size() != t.stride.size()) fail("tensor size and stride differ in length");
  out_.tensors.push_back(std::move(t));
  return make_int(Kind::kTensor, static_cast<std::int64_t>(out_.tensors.size() - 1));
}

std::size_t Unpickler::reduce(std::size_t callable, std::size_t args_id) {
  const Obj& fn = expect(callable, Kind::kGlobal, "REDUCE callable");
  const std::string fn_name = fn.str;
  const auto g = static_cast<Global>(fn.num);
  const std::vector<std::size_t> args = expect(args_id, Kind::kTuple, "REDUCE arguments").items;
  auto arity = [&](std::size_t lo, std::size_t hi) {
    if (args.size() < lo || args.size() > hi)
      fail(fn_name + " called with " + std::to_string(args.size()) + " arguments");
  };
  switch (g) {
    case Global::kOrderedDict:
      arity(0, 0);
      return make(Kind::kDict);
    case Global::kRebuildTensorV2:
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      arity(6, 7);
      return rebuild_tensor(args);
    case Global::kRebuildTensor:
      arity(4, 4);
      return rebuild_tensor(args);
    case Global::kRebuildParameter:
      // (data, requires_grad, backward_hooks): the parameter is its data.
      arity(3, 3);
      expect(args[0], Kind::kTensor, "parameter data");
      return args[0];
    case Global::kRebuildParameterWithState:
      arity(4, 4);
      expect(args[0], Kind::kTensor, "parameter data");
      return args[0];
    case Global::kStorageType:
      break;
  }
  fail("global '" + fn_name + "' cannot be called");
}

std::size_t Unpickler::persistent_load(std::size_t pid) {
  // torch.save: ('storage', storage_type, key, location, numel)
  const std::vector<std::size_t> f = expect(pid, Kind::kTuple, "persistent id").items;
  if (f.size() != 5 || objs_[f[0]].kind != Kind::kStr || objs_[f[0]].str != "storage")
    fail("unsupported persistent id (expected ('storage', type, key, location, numel))");
  const Obj& type = expect(f[1], Kind::kGlobal, "storage type");
  if (static_cast<Global>(type.num) != Global::kStorageType)
    fail("'" + type.str + "' is not a storage type");
  const DType dtype = type.dtype;
  const std::string key = expect(f[2], Kind::kStr, "storage key").str;
  expect(f[3], Kind::kStr, "storage location");
  const std::int64_t numel = expect(f[4], Kind::kInt, "storage size").num;
  if (key.empty() || key.find('/') != std::string::npos) fail("bad storage key '" + key + "'");
  if (numel < 0) fail("negative storage size for storage '" + key + "'");
  std::size_t index;
  const auto it = storage_by_key_.find(key);
  if (it == storage_by_key_.end()) {
    index = out_.storages.size();
    storage_by_key_.emplace(key, index);
    out_.storages.push_back({dtype, key, numel});
  } else {
    index = it->second;
    PickledStorage& s = out_.storages[index];
    if (s.dtype != dtype) fail("storage '" + key + "' is used with two dtypes");
    s.numel = std::max(s.numel, numel);
  }
  return make_int(Kind::kStorage, static_cast<std::int64_t>(index));
}

PickledStateDict Unpickler::run() {
  while (true) {
    op_pos_ = pos_;
    const std::uint8_t op = *take(1);
    switch (op) {
      case 0x80: {  // PROTO
        const std::uint8_t proto = *take(1);
        if (proto < 2 || proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
        break;
      }
      case 0x95:  // FRAME (protocol 4): only a read-ahead hint
        take(8);
        break;
      case '.': {  // STOP
        const std::size_t root = pop();
        return extract(root);
      }
      case '(':  // MARK
        marks_.push_back(stack_.size());
        break;
      case ')':  // EMPTY_TUPLE
        stack_.push_back(make(Kind::kTuple));
        break;
      case ']':  // EMPTY_LIST
        stack_.push_back(make(Kind::kList));
        break;
      case '}':  // EMPTY_DICT
        stack_.push_back(make(Kind::kDict));
        break;
      case 't':    // TUPLE
      case 'l': {  // LIST
        std::vector<std::size_t> items = pop_to_mark();
        const std::size_t id = make(op == 't' ? Kind::kTuple : Kind::kList);
        objs_[id].items = std::move(items);
        stack_.push_back(id);
        break;
      }
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        const std::size_t n = op - 0x84u;
        std::vector<std::size_t> items(n);
        for (std::size_t i = n; i-- > 0;) items[i] = pop();
        const std::size_t id = make(Kind::kTuple);
        objs_[id].items = std::move(items);
        stack_.push_back(id);
        break;
      }
      case 'd': {  // DICT
        const std::vector<std::size_t> items = pop_to_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        const std::size_t id = make(Kind::kDict);
        for (std::size_t i = 0; i < items.size(); i += 2) set_item(id, items[i], items[i + 1]);
        stack_.push_back(id);
        break;
      }
      case 'X':     // BINUNICODE
      case 0x8c:    // SHORT_BINUNICODE
      case 0x8d: {  // BINUNICODE8
        const std::uint64_t n = take_le(op == 'X' ? 4 : op == 0x8c ? 1 : 8);
        if (n > size_ - pos_) fail("truncated pickle string");
        const std::uint8_t* p = take(static_cast<std::size_t>(n));
        stack_.push_back(make_str(std::string(reinterpret_cast<const char*>(p), n)));
        break;
      }
      case 'J':  // BININT
        stack_.push_back(make_int(
            Kind::kInt, static_cast<std::int32_t>(static_cast<std::uint32_t>(take_le(4)))));
        break;
      case 'K':  // BININT1
        stack_.push_back(make_int(Kind::kInt, static_cast<std::int64_t>(take_le(1))));
        break;
      case 'M':  // BININT2
        stack_.push_back(make_int(Kind::kInt, static_cast<std::int64_t>(take_le(2))));
        break;
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        const std::size_t n = *take(1);
        if (n > 8) fail("integer too large (" + std::to_string(n) + " bytes)");
        std::uint64_t v = n ? take_le(n) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~std::uint64_t{0} << (8 * n);
        stack_.push_back(make_int(Kind::kInt, static_cast<std::int64_t>(v)));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian double
        const std::uint8_t* p = take(8);
        std::uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = bits << 8 | p[i];
        double d;
        std::memcpy(&d, &bits, sizeof d);
        const std::size_t id = make(Kind::kFloat);
        objs_[id].real = d;
        stack_.push_back(id);
        break;
      }
      case 0x88:  // NEWTRUE
      case 0x89:  // NEWFALSE
        stack_.push_back(make_int(Kind::kBool, op == 0x88));
        break;
      case 'N':  // NONE
        stack_.push_back(make(Kind::kNone));
        break;
      case 's': {  // SETITEM
        const std::size_t value = pop();
        const std::size_t key = pop();
        set_item(top(), key, value);
        break;
      }
      case 'u': {  // SETITEMS
        const std::vector<std::size_t> items = pop_to_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        const std::size_t dict = top();
        for (std::size_t i = 0; i < items.size(); i += 2) set_item(dict, items[i], items[i + 1]);
        break;
      }
      case 'a': {  // APPEND
        const std::size_t value = pop();
        expect(top(), Kind::kList, "APPEND target").items.push_back(value);
        break;
      }
      case 'e': {  // APPENDS
        const std::vector<std::size_t> items = pop_to_mark();
        Obj& list = expect(top(), Kind::kList, "APPENDS target");
        list.items.insert(list.items.end(), items.begin(), items.end());
        break;
      }
      case 'q':  // BINPUT
        memo_[take_le(1)] = top();
        break;
      case 'r':  // LONG_BINPUT
        memo_[take_le(4)] = top();
        break;
      case 0x94: {  // MEMOIZE
        const std::uint64_t index = memo_.size();
        memo_[index] = top();
        break;
      }
      case 'h':    // BINGET
      case 'j': {  // LONG_BINGET
        const std::uint64_t index = take_le(op == 'h' ? 1 : 4);
        const auto it = memo_.find(index);
        if (it == memo_.end()) fail("pickle memo entry " + std::to_string(index) + " missing");
        stack_.push_back(it->second);
        break;
      }
      case 'c': {  // GLOBAL
        const std::string module = take_line();
        const std::string name = take_line();
        global(module, name);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        const std::size_t name = pop();
        const std::size_t module = pop();
        global(expect(module, Kind::kStr, "STACK_GLOBAL module").str,
               expect(name, Kind::kStr, "STACK_GLOBAL name").str);
        break;
      }
      case 'R': {  // REDUCE
        const std::size_t args = pop();
        const std::size_t callable = pop();
        stack_.push_back(reduce(callable, args));
        break;
      }
      case 'b': {  // BUILD: sets attributes (OrderedDict._metadata, tensor state) that a state
                   // dict reader has no use for.
        pop();
        const Kind k = objs_[top()].kind;
        if (k != Kind::kDict && k != Kind::kTensor) fail(std::string("BUILD on a ") + kind_name(k));
        break;
      }
      case 'Q': {  // BINPERSID
        const std::size_t pid = pop();
        stack_.push_back(persistent_load(pid));
        break;
      }
      case '0':  // POP
        pop();
        break;
      case '1':  // POP_MARK
        pop_to_mark();
        break;
      case '2':  // DUP
        stack_.push_back(top());
        break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + buf);
      }
    }
  }
}

PickledStateDict Unpickler::extract(std::size_t root) {
  if (objs_[root].kind != Kind::kDict)
    fail(std::string("the pickle holds a ") + kind_name(objs_[root].kind) + ", not a state dict");
  // Training scripts save {"model": state_dict, "optimizer": ..., "epoch": ...}. The depth cap
  // keeps a corrupted pickle whose memo makes a dict contain itself from looping forever.
  std::size_t dict = root;
  for (int depth = 0; depth < 4; ++depth) {
    const Obj& d = objs_[dict];
    std::size_t inner = SIZE_MAX;
    for (const char* wrapper : {"model", "state_dict"}) {
      const auto it = d.index.find(std::string("s") + wrapper);
      if (it != d.index.end() && objs_[d.items[it->second + 1]].kind == Kind::kDict) {
        inner = d.items[it->second + 1];
        out_.unwrapped.push_back(std::string("['") + wrapper + "']");
        break;
      }
    }
    if (inner == SIZE_MAX) break;
    dict = inner;
  }
  const Obj& d = objs_[dict];
  for (std::size_t i = 0; i < d.items.size(); i += 2) {
    const Obj& key = objs_[d.items[i]];
    const Obj& value = objs_[d.items[i + 1]];
    if (key.kind != Kind::kStr) fail(std::string("state dict key of type ") + kind_name(key.kind));
    if (value.kind != Kind::kTensor)
      fail("state dict entry '" + key.str + "' is a " + kind_name(value.kind) + ", not a tensor");
    out_.entries.emplace_back(key.str, static_cast<std::size_t>(value.num));
  }
  return std::move(out_);
}

}  // namespace

PickledStateDict unpickle_state_dict(const std::uint8_t* data, std::size_t size,
                                     const std::string& where) {
  return Unpickler(data, size, where).run();
}

}  // namespace semat::io::detail
