// semat::onnx::Model: the ONNX protobuf (libonnx's generated classes) turned into a list of
// LibTorch calls. Float values live on the model's device in float32 and channels-last memory
// (mkldnn's fastest convolution layout on CPU); int64 values (shapes, slice bounds, Constant
// indices) live on the CPU.
#include "semat/onnx/model.h"

#include <onnx/onnx_pb.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>

#include "semat/models/precision.h"

namespace semat::onnx {
namespace {

namespace pb = ::onnx;

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// One node, its attributes read once at load.
struct Node {
  std::string op;
  std::string name;  // the node's name, or "#<index>" when the file gives none
  std::vector<int> in;   // value ids, -1 for an omitted optional input
  std::vector<int> out;  // value ids
  std::vector<std::int64_t> kernel, strides, pads, dilations, axes;
  std::int64_t group = 1, ceil_mode = 0, axis = 0, to = 1, start = 0, end = 0;
  bool has_end = false, has_axes_attr = false;
  std::string mode, ctm;
  torch::Tensor value;  // Constant
  bool is_static = false;  // depends only on constants and input shapes
};

const std::set<std::string>& supported_ops() {
  static const std::set<std::string> ops = {
      "Conv",     "Relu",  "MaxPool", "Resize", "Concat", "Add",   "Mul",   "Sub",      "Sigmoid",
      "Cast",     "Constant", "Shape", "Slice", "Gather", "Unsqueeze", "Identity"};
  return ops;
}
// Ops cheap enough to fold when every input is a constant or a shape.
const std::set<std::string>& foldable_ops() {
  static const std::set<std::string> ops = {"Slice", "Gather", "Concat", "Cast", "Unsqueeze",
                                            "Add",   "Mul",    "Sub",    "Identity"};
  return ops;
}

// Ops whose output is a new tensor, never a view of an input.
const std::set<std::string>& fresh_ops() {
  static const std::set<std::string> ops = {"Conv", "Relu", "Sigmoid", "MaxPool", "Resize",
                                            "Concat", "Add", "Mul", "Sub"};
  return ops;
}

// Element count, or -1 when a dimension is negative or the product exceeds 2^40 (no tensor of
// a model under 2 GiB is that large; a crafted dims list must not overflow into a small count
// that matches its data).
std::int64_t numel_of(const std::vector<std::int64_t>& dims) {
  constexpr std::int64_t kMax = std::int64_t{1} << 40;
  // The product of the non-zero dims is bounded too: with a zero among them the count is 0, but
  // LibTorch still multiplies the others into strides, and [0, 2^62, 2^62] overflowed there
  // (fuzz_onnx: an exception thrown through noexcept code, i.e. std::terminate).
  std::int64_t extent = 1;
  bool empty = false;
  for (auto d : dims) {
    if (d < 0) return -1;
    if (d == 0) {
      empty = true;
      continue;
    }
    if (extent > kMax / d) return -1;
    extent *= d;
  }
  return empty ? 0 : extent;
}

// The most values one node may produce: 2^28 (1 GiB of float32), four times IS-Net's largest
// activation at its 1024 x 1024 input (1 x 64 x 1024 x 1024). Checked before the ops that can
// make a tensor larger than the file and the inputs (Resize, padding, broadcasting), so a
// crafted model fails with one line instead of exhausting memory.
constexpr std::int64_t kMaxNodeValues = std::int64_t{1} << 28;
// Kernel sides, strides, dilations and pads beyond this are no real network's (and would
// overflow LibTorch's size arithmetic when huge).
constexpr std::int64_t kMaxWindow = 1 << 16;

}  // namespace

struct Model::Impl {
  std::string file;
  torch::Device device{torch::kCPU};
  // What the convolutions run in: float32, or bf16 (--precision bf16): the Conv weights and
  // biases are converted once at load, the graph inputs on entry, and activations stay bf16 up
  // to the outputs (returned as float32). Sigmoid runs in float32 (its outputs are the
  // probabilities: bf16 would round them to 1/256 near 1).
  torch::ScalarType compute = torch::kFloat;
  std::vector<std::string> value_names;
  std::unordered_map<std::string, int> value_ids;
  std::vector<torch::Tensor> constants;  // by value id; undefined when not an initializer
  std::vector<int> producer;             // node index by value id, -1 when none
  std::vector<Node> nodes;               // topological order
  std::vector<ValueInfo> inputs, outputs;
  std::vector<int> input_ids, output_ids;

  mutable std::mutex cache_mutex;
  // Static values (shape computations) for one set of input shapes.
  mutable std::map<std::vector<std::vector<std::int64_t>>, std::unordered_map<int, torch::Tensor>>
      static_cache;

  [[noreturn]] void fail(const std::string& what) const { throw ModelError(file + ": " + what); }
  [[noreturn]] void fail(const Node& n, const std::string& what) const {
    throw ModelError(file + ": node '" + n.name + "' (" + n.op + "): " + what);
  }

  int id_of(const std::string& name) {
    auto it = value_ids.find(name);
    if (it != value_ids.end()) return it->second;
    const int id = static_cast<int>(value_names.size());
    value_ids.emplace(name, id);
    value_names.push_back(name);
    constants.emplace_back();
    producer.push_back(-1);
    return id;
  }

  torch::Tensor read_tensor(const pb::TensorProto& t, const std::string& what) const {
    if (t.data_location() == pb::TensorProto::EXTERNAL)
      fail(what + " '" + t.name() + "' uses external data, which is not supported");
    std::vector<std::int64_t> dims(t.dims().begin(), t.dims().end());
    for (auto d : dims)
      if (d < 0) fail(what + " '" + t.name() + "' has a negative dimension");
    const std::int64_t n = numel_of(dims);
    if (n < 0) fail(what + " '" + t.name() + "' has dims whose product is absurdly large");
    auto check_count = [&](std::int64_t have) {
      if (have != n)
        fail(what + " '" + t.name() + "' holds " + std::to_string(have) + " values, its dims say " +
             std::to_string(n));
    };
    const std::string& raw = t.raw_data();
    auto from_raw = [&](torch::ScalarType type, std::size_t elem) {
      if (raw.size() != static_cast<std::size_t>(n) * elem)
        fail(what + " '" + t.name() + "' has " + std::to_string(raw.size()) + " bytes of raw data, " +
             "expected " + std::to_string(static_cast<std::size_t>(n) * elem));
      auto out = torch::empty(dims, torch::TensorOptions().dtype(type));
      if (n > 0) std::memcpy(out.data_ptr(), raw.data(), raw.size());
      return out;
    };
    switch (t.data_type()) {
      case pb::TensorProto::FLOAT:
        if (t.has_raw_data()) return from_raw(torch::kFloat, 4);
        check_count(t.float_data_size());
        return torch::tensor(std::vector<float>(t.float_data().begin(), t.float_data().end()))
            .reshape(dims);
      case pb::TensorProto::FLOAT16: {
        if (t.has_raw_data()) return from_raw(torch::kHalf, 2).to(torch::kFloat);
        // The typed field stores each fp16 bit pattern in the low 16 bits of an int32.
        check_count(t.int32_data_size());
        auto bits = torch::empty(dims, torch::kHalf);
        auto* p = static_cast<std::uint16_t*>(bits.data_ptr());
        for (int i = 0; i < t.int32_data_size(); ++i)
          p[i] = static_cast<std::uint16_t>(t.int32_data(i) & 0xffff);
        return bits.to(torch::kFloat);
      }
      case pb::TensorProto::DOUBLE:
        if (t.has_raw_data()) return from_raw(torch::kDouble, 8).to(torch::kFloat);
        check_count(t.double_data_size());
        return torch::tensor(std::vector<double>(t.double_data().begin(), t.double_data().end()))
            .reshape(dims)
            .to(torch::kFloat);
      case pb::TensorProto::INT64:
        if (t.has_raw_data()) return from_raw(torch::kLong, 8);
        check_count(t.int64_data_size());
        return torch::tensor(std::vector<std::int64_t>(t.int64_data().begin(), t.int64_data().end()),
                             torch::kLong)
            .reshape(dims);
      case pb::TensorProto::INT32:
        if (t.has_raw_data()) return from_raw(torch::kInt, 4).to(torch::kLong);
        check_count(t.int32_data_size());
        return torch::tensor(std::vector<std::int64_t>(t.int32_data().begin(), t.int32_data().end()),
                             torch::kLong)
            .reshape(dims);
      default:
        fail(what + " '" + t.name() + "' has data type " + std::to_string(t.data_type()) +
             " (supported: float, float16, double, int64, int32)");
    }
  }

  // Float tensors go to the device (4-D ones in channels-last); integers stay on the CPU.
  torch::Tensor place(torch::Tensor t) const {
    if (!t.is_floating_point()) return t;
    t = t.to(device);
    // Channels-last: measured 2.54 s of CPU per IS-Net image at 1024 x 1024 against 2.75 s in
    // NCHW (one thread), the convolutions then run without layout conversions.
    if (t.dim() == 4) t = t.contiguous(at::MemoryFormat::ChannelsLast);
    return t;
  }

  void parse_attributes(const pb::NodeProto& np, Node& n) const {
    for (const auto& a : np.attribute()) {
      const std::string& k = a.name();
      auto ints = [&]() { return std::vector<std::int64_t>(a.ints().begin(), a.ints().end()); };
      if (k == "kernel_shape") n.kernel = ints();
      else if (k == "strides") n.strides = ints();
      else if (k == "pads") n.pads = ints();
      else if (k == "dilations") n.dilations = ints();
      else if (k == "group") n.group = a.i();
      else if (k == "ceil_mode") n.ceil_mode = a.i();
      else if (k == "axis") n.axis = a.i();
      else if (k == "to") n.to = a.i();
      else if (k == "start") n.start = a.i();
      else if (k == "end") { n.end = a.i(); n.has_end = true; }
      else if (k == "axes") { n.axes = ints(); n.has_axes_attr = true; }
      else if (k == "mode") n.mode = a.s();
      else if (k == "coordinate_transformation_mode") n.ctm = a.s();
      else if (k == "auto_pad") {
        if (a.s() != "NOTSET" && !a.s().empty()) fail(n, "auto_pad " + a.s() + " is not supported");
      } else if (k == "storage_order") {
        if (a.i() != 0) fail(n, "storage_order 1 is not supported");
      } else if (k == "antialias") {
        if (a.i() != 0) fail(n, "antialias is not supported");
      } else if (k == "keep_aspect_ratio_policy") {
        if (a.s() != "stretch") fail(n, "keep_aspect_ratio_policy " + a.s() + " is not supported");
      } else if (k == "value") n.value = read_tensor(a.t(), "Constant");
      else if (k == "value_float") n.value = torch::tensor(a.f());
      else if (k == "value_floats")
        n.value = torch::tensor(std::vector<float>(a.floats().begin(), a.floats().end()));
      else if (k == "value_int") n.value = torch::tensor(a.i(), torch::kLong);
      else if (k == "value_ints") n.value = torch::tensor(ints(), torch::kLong);
      else if (k == "cubic_coeff_a" || k == "exclude_outside" || k == "extrapolation_value" ||
               k == "nearest_mode") {
        // Used by other Resize modes only (or outside the image, which linear never samples).
      } else {
        fail(n, "attribute '" + k + "' is not supported");
      }
    }
    if (n.op == "Constant" && !n.value.defined()) fail(n, "no value attribute");
    if (n.op == "Resize") {
      if (n.mode.empty()) n.mode = "nearest";
      if (n.ctm.empty()) n.ctm = "half_pixel";
      if (n.mode != "linear") fail(n, "mode " + n.mode + " is not supported (only linear)");
      if (n.ctm != "half_pixel" && n.ctm != "pytorch_half_pixel" && n.ctm != "align_corners")
        fail(n, "coordinate_transformation_mode " + n.ctm + " is not supported");
    }
    if (n.op == "Cast" && !(n.to == 1 || n.to == 10 || n.to == 11 || n.to == 6 || n.to == 7))
      fail(n, "Cast to data type " + std::to_string(n.to) + " is not supported");
  }

  void load(const pb::ModelProto& m) {
    if (!m.has_graph() || m.graph().node_size() == 0) fail("not an ONNX model (no graph nodes)");
    for (const auto& o : m.opset_import())
      if ((o.domain().empty() || o.domain() == "ai.onnx") && o.version() > 17)
        fail("opset " + std::to_string(o.version()) + " is newer than supported (<= 17)");
    const auto& g = m.graph();
    for (const auto& t : g.initializer()) {
      const int id = id_of(t.name());
      constants[id] = place(read_tensor(t, "initializer"));
    }
    for (const auto& vi : g.input()) {
      const int id = id_of(vi.name());
      if (constants[id].defined()) continue;  // older exporters list initializers as inputs
      ValueInfo info{vi.name(), {}};
      if (vi.type().has_tensor_type()) {
        const auto& tt = vi.type().tensor_type();
        if (tt.elem_type() != pb::TensorProto::FLOAT)
          fail("input '" + vi.name() + "' is not float32 (data type " +
               std::to_string(tt.elem_type()) + ")");
        for (const auto& d : tt.shape().dim())
          info.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
      }
      inputs.push_back(info);
      input_ids.push_back(id);
    }
    // Nodes, in file order first; checked and ordered below.
    std::vector<Node> raw;
    raw.reserve(static_cast<std::size_t>(g.node_size()));
    for (int i = 0; i < g.node_size(); ++i) {
      const auto& np = g.node(i);
      Node n;
      n.op = np.op_type();
      n.name = np.name().empty() ? "#" + std::to_string(i) : np.name();
      const bool std_domain = np.domain().empty() || np.domain() == "ai.onnx";
      if (!std_domain || !supported_ops().count(n.op))
        fail("unsupported op '" + (std_domain ? n.op : np.domain() + "." + n.op) + "' (node '" +
             n.name + "')");
      for (const auto& s : np.input()) n.in.push_back(s.empty() ? -1 : id_of(s));
      for (const auto& s : np.output()) n.out.push_back(id_of(s));
      if (n.out.empty()) fail(n, "no outputs");
      if (n.op == "MaxPool" && n.out.size() > 1) fail(n, "the Indices output is not supported");
      parse_attributes(np, n);
      raw.push_back(std::move(n));
    }
    for (std::size_t i = 0; i < raw.size(); ++i)
      for (int v : raw[i].out) {
        if (producer[v] != -1) fail(raw[i], "value '" + value_names[v] + "' has two producers");
        if (constants[v].defined()) fail(raw[i], "writes initializer '" + value_names[v] + "'");
        producer[v] = static_cast<int>(i);
      }
    std::set<int> input_set(input_ids.begin(), input_ids.end());
    for (const auto& n : raw)
      for (int v : n.in)
        if (v >= 0 && producer[v] == -1 && !constants[v].defined() && !input_set.count(v))
          fail(n, "input '" + value_names[v] + "' is neither an initializer, a graph input nor a "
                  "node output (missing initializer?)");
    // Kahn's algorithm; file order among ready nodes.
    std::vector<int> pending(raw.size(), 0);
    std::vector<std::vector<int>> users(value_names.size());
    for (std::size_t i = 0; i < raw.size(); ++i)
      for (int v : raw[i].in)
        if (v >= 0 && producer[v] != -1) {
          ++pending[i];
          users[v].push_back(static_cast<int>(i));
        }
    std::vector<int> ready, order;
    for (std::size_t i = 0; i < raw.size(); ++i)
      if (pending[i] == 0) ready.push_back(static_cast<int>(i));
    std::size_t head = 0;
    while (head < ready.size()) {
      const int i = ready[head++];
      order.push_back(i);
      for (int v : raw[i].out)
        for (int u : users[v])
          if (--pending[u] == 0) ready.push_back(u);
    }
    if (order.size() != raw.size()) fail("the graph has a cycle");
    std::vector<bool> value_static(value_names.size(), false);
    for (std::size_t v = 0; v < constants.size(); ++v) value_static[v] = constants[v].defined();
    for (int i : order) {
      Node& n = raw[i];
      bool all_static = true;
      for (int v : n.in)
        if (v >= 0 && !value_static[v]) all_static = false;
      n.is_static = n.op == "Constant" || n.op == "Shape" || (all_static && foldable_ops().count(n.op));
      for (int v : n.out) value_static[v] = n.is_static;
      if (n.op == "Constant") n.value = place(n.value);
    }
    for (int i : order) nodes.push_back(std::move(raw[i]));
    if (compute != torch::kFloat)
      for (const auto& n : nodes)
        if (n.op == "Conv")
          for (std::size_t k = 1; k < n.in.size(); ++k)
            if (n.in[k] >= 0 && constants[n.in[k]].defined() && constants[n.in[k]].is_floating_point())
              constants[n.in[k]] = constants[n.in[k]].to(compute);
    for (auto& n : nodes)
      for (int v : n.out) producer[v] = static_cast<int>(&n - nodes.data());
    for (const auto& vi : g.output()) {
      const int id = id_of(vi.name());
      if (producer[id] == -1 && !constants[id].defined() && !input_set.count(id))
        fail("output '" + vi.name() + "' is produced by no node");
      ValueInfo info{vi.name(), {}};
      if (vi.type().has_tensor_type())
        for (const auto& d : vi.type().tensor_type().shape().dim())
          info.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
      outputs.push_back(info);
      output_ids.push_back(id);
    }
    if (outputs.empty()) fail("the graph has no outputs");
  }

  // ---- evaluation -------------------------------------------------------------------------

  void check_values(const Node& n, const std::vector<std::int64_t>& shape) const {
    const std::int64_t v = numel_of(shape);
    if (v < 0 || v > kMaxNodeValues) {
      std::string dims;
      for (auto d : shape) dims += (dims.empty() ? "" : " x ") + std::to_string(d);
      fail(n, "would produce a " + dims + " tensor, over the limit of " +
                  std::to_string(kMaxNodeValues) + " values per node");
    }
  }
  // kernel_shape, strides, dilations in [1, kMaxWindow]; pads in [0, kMaxWindow].
  void check_window(const Node& n, const std::vector<std::int64_t>& v, std::int64_t lo,
                    const char* what) const {
    for (auto x : v)
      if (x < lo || x > kMaxWindow)
        fail(n, std::string(what) + " value " + std::to_string(x) + " is out of range [" +
                    std::to_string(lo) + ", " + std::to_string(kMaxWindow) + "]");
  }
  // The input once padded (pads: begin H, begin W, end H, end W), checked against the limit.
  void check_padded(const Node& n, const torch::Tensor& in, const std::vector<std::int64_t>& p) const {
    check_values(n, {in.size(0), in.size(1), in.size(2) + p[0] + p[2], in.size(3) + p[1] + p[3]});
  }

  static std::vector<std::int64_t> ints_of(const torch::Tensor& t) {
    auto c = t.to(torch::kCPU).to(torch::kLong).contiguous();
    const auto* p = c.data_ptr<std::int64_t>();
    return std::vector<std::int64_t>(p, p + c.numel());
  }

  torch::Tensor eval(const Node& n, const std::vector<torch::Tensor>& x, bool reuse0) const {
    auto need = [&](std::size_t k) -> const torch::Tensor& {
      if (k >= x.size() || !x[k].defined()) fail(n, "missing input " + std::to_string(k));
      return x[k];
    };
    auto opt = [&](std::size_t k) -> torch::Tensor {
      return k < x.size() && x[k].defined() ? x[k] : torch::Tensor();
    };
    const std::string& op = n.op;
    if (op == "Conv") {
      const auto& in = need(0);
      const auto& w = need(1);
      if (in.dim() != 4 || w.dim() != 4)
        fail(n, "only 2-D convolutions are supported (input rank " + std::to_string(in.dim()) + ")");
      if (!n.kernel.empty() && (n.kernel.size() != 2 || n.kernel[0] != w.size(2) || n.kernel[1] != w.size(3)))
        fail(n, "kernel_shape does not match the weight");
      std::vector<std::int64_t> s = n.strides.empty() ? std::vector<std::int64_t>{1, 1} : n.strides;
      std::vector<std::int64_t> d = n.dilations.empty() ? std::vector<std::int64_t>{1, 1} : n.dilations;
      std::vector<std::int64_t> p = n.pads.empty() ? std::vector<std::int64_t>{0, 0, 0, 0} : n.pads;
      if (s.size() != 2 || d.size() != 2 || p.size() != 4) fail(n, "strides/dilations/pads rank");
      check_window(n, s, 1, "strides");
      check_window(n, d, 1, "dilations");
      check_window(n, p, 0, "pads");
      check_padded(n, in, p);
      torch::Tensor src = in;
      std::vector<std::int64_t> pad2{p[0], p[1]};
      if (p[0] != p[2] || p[1] != p[3]) {
        src = torch::constant_pad_nd(in, {p[1], p[3], p[0], p[2]}, 0.0);
        pad2 = {0, 0};
      }
      // A float32 value meeting bf16 weights (a Constant, a promoted sum): cast it, not the weights.
      if (src.scalar_type() != w.scalar_type()) src = src.to(w.scalar_type());
      return torch::conv2d(src, w, opt(2), s, pad2, d, n.group);
    }
    if (op == "Relu") return reuse0 ? need(0).relu_() : torch::relu(need(0));
    if (op == "Sigmoid") {
      if (need(0).scalar_type() == torch::kBFloat16) return torch::sigmoid(need(0).to(torch::kFloat));
      return reuse0 ? need(0).sigmoid_() : torch::sigmoid(need(0));
    }
    if (op == "Identity") return need(0);
    if (op == "MaxPool") {
      const auto& in = need(0);
      if (in.dim() != 4) fail(n, "only 2-D pooling is supported");
      if (n.kernel.size() != 2) fail(n, "kernel_shape must have 2 values");
      std::vector<std::int64_t> s = n.strides.empty() ? std::vector<std::int64_t>{1, 1} : n.strides;
      std::vector<std::int64_t> d = n.dilations.empty() ? std::vector<std::int64_t>{1, 1} : n.dilations;
      std::vector<std::int64_t> p = n.pads.empty() ? std::vector<std::int64_t>{0, 0, 0, 0} : n.pads;
      if (s.size() != 2 || d.size() != 2 || p.size() != 4) fail(n, "strides/dilations/pads rank");
      check_window(n, n.kernel, 1, "kernel_shape");
      check_window(n, s, 1, "strides");
      check_window(n, d, 1, "dilations");
      check_window(n, p, 0, "pads");
      check_padded(n, in, p);
      torch::Tensor src = in;
      std::vector<std::int64_t> pad2{p[0], p[1]};
      if (p[0] != p[2] || p[1] != p[3] || p[0] * 2 > n.kernel[0] || p[1] * 2 > n.kernel[1]) {
        src = torch::constant_pad_nd(in, {p[1], p[3], p[0], p[2]},
                                     -std::numeric_limits<double>::infinity());
        pad2 = {0, 0};
      }
      return torch::max_pool2d(src, n.kernel, s, pad2, d, n.ceil_mode != 0);
    }
    if (op == "Resize") {
      const auto& in = need(0);
      if (in.dim() != 4) fail(n, "only 4-D (NCHW) inputs are supported");
      const auto scales_t = opt(2), sizes_t = opt(3);
      std::int64_t oh, ow;
      c10::optional<double> sh, sw;
      if (sizes_t.defined() && sizes_t.numel() > 0) {
        const auto sz = ints_of(sizes_t);
        if (sz.size() != 4 || sz[0] != in.size(0) || sz[1] != in.size(1))
          fail(n, "sizes must keep N and C");
        oh = sz[2];
        ow = sz[3];
        if (oh <= 0 || ow <= 0) fail(n, "empty output size");
      } else if (scales_t.defined() && scales_t.numel() > 0) {
        auto sc = scales_t.to(torch::kCPU).to(torch::kDouble).contiguous();
        const double* q = sc.data_ptr<double>();
        if (sc.numel() != 4 || q[0] != 1.0 || q[1] != 1.0) fail(n, "scales must keep N and C");
        // Bounded before the conversion (a huge or NaN scale would not fit an int64).
        const double fh = std::floor(in.size(2) * q[2]), fw = std::floor(in.size(3) * q[3]);
        if (!(fh >= 1 && fw >= 1)) fail(n, "empty output size (scales must be positive)");
        if (!(fh <= kMaxNodeValues && fw <= kMaxNodeValues))
          fail(n, "scales give an output side over " + std::to_string(kMaxNodeValues));
        oh = static_cast<std::int64_t>(fh);
        ow = static_cast<std::int64_t>(fw);
        sh = q[2];
        sw = q[3];
      } else {
        fail(n, "neither scales nor sizes given");
      }
      check_values(n, {in.size(0), in.size(1), oh, ow});
      if (n.ctm == "pytorch_half_pixel" && (oh == 1 || ow == 1))
        fail(n, "pytorch_half_pixel with an output side of 1 is not supported");
      const bool align = n.ctm == "align_corners";
      return at::upsample_bilinear2d(in, {oh, ow}, align, align ? c10::nullopt : sh,
                                     align ? c10::nullopt : sw);
    }
    if (op == "Concat") {
      std::vector<torch::Tensor> parts;
      for (std::size_t k = 0; k < x.size(); ++k) parts.push_back(need(k));
      if (parts.empty()) fail(n, "no inputs");
      std::int64_t axis = n.axis < 0 ? n.axis + parts[0].dim() : n.axis;
      return torch::cat(parts, axis);
    }
    if (op == "Add" || op == "Mul" || op == "Sub") {
      const auto& a = need(0);
      const auto& b = need(1);
      // The broadcast shape (numpy rules; mismatches are left to LibTorch's message).
      std::vector<std::int64_t> shape(static_cast<std::size_t>(std::max(a.dim(), b.dim())), 1);
      for (std::int64_t k = 0; k < a.dim(); ++k)
        shape[shape.size() - 1 - k] = a.size(a.dim() - 1 - k);
      for (std::int64_t k = 0; k < b.dim(); ++k) {
        auto& d = shape[shape.size() - 1 - k];
        d = std::max(d, b.size(b.dim() - 1 - k));
      }
      check_values(n, shape);
      const bool inplace = reuse0 && a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type();
      if (op == "Add") return inplace ? a.add_(b) : torch::add(a, b);
      if (op == "Mul") return inplace ? a.mul_(b) : torch::mul(a, b);
      return inplace ? a.sub_(b) : torch::sub(a, b);
    }
    if (op == "Cast") {
      const auto& a = need(0);
      if (n.to == 6 || n.to == 7) return a.to(torch::kLong);
      return a.is_floating_point() ? a : place(a.to(torch::kFloat));
    }
    if (op == "Constant") return n.value;
    if (op == "Shape") {
      const auto& a = need(0);
      const std::int64_t r = a.dim();
      std::int64_t b = n.start < 0 ? n.start + r : n.start;
      std::int64_t e = n.has_end ? (n.end < 0 ? n.end + r : n.end) : r;
      b = std::clamp<std::int64_t>(b, 0, r);
      e = std::clamp<std::int64_t>(e, 0, r);
      std::vector<std::int64_t> dims;
      for (std::int64_t k = b; k < e; ++k) dims.push_back(a.size(k));
      return torch::tensor(dims, torch::kLong);
    }
    if (op == "Slice") {
      torch::Tensor a = need(0);
      const auto starts = ints_of(need(1));
      const auto ends = ints_of(need(2));
      std::vector<std::int64_t> axes, steps;
      if (opt(3).defined()) axes = ints_of(x[3]);
      else for (std::size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<std::int64_t>(k));
      if (opt(4).defined()) steps = ints_of(x[4]);
      else steps.assign(starts.size(), 1);
      if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
        fail(n, "starts, ends, axes and steps differ in length");
      for (std::size_t k = 0; k < starts.size(); ++k) {
        const std::int64_t ax = axes[k] < 0 ? axes[k] + a.dim() : axes[k];
        if (ax < 0 || ax >= a.dim()) fail(n, "axis out of range");
        if (steps[k] <= 0) fail(n, "only positive steps are supported");
        const std::int64_t dim = a.size(ax);
        auto norm = [&](std::int64_t v) {
          if (v < 0) v = v < -dim ? 0 : v + dim;
          return std::min(v, dim);
        };
        const std::int64_t b = norm(starts[k]);
        const std::int64_t e = std::max(norm(ends[k]), b);
        a = a.slice(ax, b, e, steps[k]);
      }
      return a;
    }
    if (op == "Gather") {
      const auto& a = need(0);
      const auto& idx_t = need(1);
      const std::int64_t ax = n.axis < 0 ? n.axis + a.dim() : n.axis;
      if (ax < 0 || ax >= a.dim()) fail(n, "axis out of range");
      auto idx = idx_t.to(torch::kLong).to(a.device());
      idx = torch::where(idx < 0, idx + a.size(ax), idx);
      if (idx.numel() > 0 && (idx.min().item<std::int64_t>() < 0 ||
                              idx.max().item<std::int64_t>() >= a.size(ax)))
        fail(n, "index out of range");
      std::vector<std::int64_t> shape(a.sizes().begin(), a.sizes().begin() + ax);
      for (auto d : idx.sizes()) shape.push_back(d);
      for (std::int64_t k = ax + 1; k < a.dim(); ++k) shape.push_back(a.size(k));
      return a.index_select(ax, idx.flatten()).reshape(shape);
    }
    if (op == "Unsqueeze") {
      torch::Tensor a = need(0);
      std::vector<std::int64_t> axes = n.has_axes_attr ? n.axes : ints_of(need(1));
      const std::int64_t r = a.dim() + static_cast<std::int64_t>(axes.size());
      for (auto& v : axes) v = v < 0 ? v + r : v;
      std::sort(axes.begin(), axes.end());
      for (auto v : axes) a = a.unsqueeze(v);
      return a;
    }
    fail(n, "unsupported op");
  }

  std::vector<Tensor> run(const std::vector<std::pair<std::string, Tensor>>& given,
                          const std::vector<std::string>& wanted) const {
    c10::InferenceMode guard;
    std::vector<torch::Tensor> vals(value_names.size());
    std::vector<std::vector<std::int64_t>> key;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const ValueInfo& info = inputs[i];
      const Tensor* t = nullptr;
      for (const auto& g : given)
        if (g.first == info.name) t = &g.second;
      SEMAT_CHECK(t != nullptr, InvalidArgument, file << ": input '" << info.name << "' not given");
      SEMAT_CHECK(info.shape.empty() || t->shape.size() == info.shape.size(), InvalidArgument,
                  file << ": input '" << info.name << "' has rank " << t->shape.size()
                       << ", the model wants rank " << info.shape.size());
      for (std::size_t k = 0; k < info.shape.size(); ++k)
        SEMAT_CHECK(info.shape[k] < 0 || info.shape[k] == t->shape[k], InvalidArgument,
                    file << ": input '" << info.name << "' dimension " << k << " is "
                         << t->shape[k] << ", the model wants " << info.shape[k]);
      SEMAT_CHECK(static_cast<std::int64_t>(t->data.size()) == numel_of(t->shape), InvalidArgument,
                  file << ": input '" << info.name << "' has " << t->data.size()
                       << " values for its shape");
      auto cpu = torch::from_blob(const_cast<float*>(t->data.data()), t->shape, torch::kFloat);
      vals[input_ids[i]] = place(device.is_cpu() && cpu.dim() != 4 ? cpu.clone() : cpu);
      if (compute != torch::kFloat) vals[input_ids[i]] = vals[input_ids[i]].to(compute);
      key.push_back(t->shape);
    }
    for (const auto& g : given)
      SEMAT_CHECK(value_ids.count(g.first) &&
                      std::find(input_ids.begin(), input_ids.end(), value_ids.at(g.first)) != input_ids.end(),
                  InvalidArgument, file << ": '" << g.first << "' is not an input of the model");
    std::vector<int> out_ids;
    if (wanted.empty()) out_ids.push_back(output_ids.front());
    for (const auto& w : wanted) {
      auto it = value_ids.find(w);
      SEMAT_CHECK(it != value_ids.end(), InvalidArgument, file << ": no value named '" << w << "'");
      out_ids.push_back(it->second);
    }
    // The nodes the wanted values depend on, and how often each value is still read.
    std::vector<char> needed(nodes.size(), 0);
    std::vector<int> stack;
    for (int v : out_ids)
      if (producer[v] >= 0) stack.push_back(producer[v]);
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      if (needed[i]) continue;
      needed[i] = 1;
      for (int v : nodes[i].in)
        if (v >= 0 && producer[v] >= 0 && !needed[producer[v]]) stack.push_back(producer[v]);
    }
    std::vector<int> uses(value_names.size(), 0);
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (needed[i])
        for (int v : nodes[i].in)
          if (v >= 0) ++uses[v];
    std::vector<char> pinned(value_names.size(), 0);  // never reused in place nor freed
    for (int v : out_ids) pinned[v] = 1;
    for (int v : input_ids) pinned[v] = 1;
    for (std::size_t v = 0; v < constants.size(); ++v)
      if (constants[v].defined()) {
        vals[v] = constants[v];
        pinned[v] = 1;
      }
    std::unordered_map<int, torch::Tensor>* cache;
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      cache = &static_cache[key];  // std::map nodes are stable
    }
    std::vector<torch::Tensor> args;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (!needed[i]) continue;
      const Node& n = nodes[i];
      bool cached = false;
      if (n.is_static) {
        std::lock_guard<std::mutex> lock(cache_mutex);
        auto it = cache->find(n.out[0]);
        if (it != cache->end()) {
          vals[n.out[0]] = it->second;
          cached = true;
        }
      }
      if (!cached) {
        args.clear();
        for (int v : n.in) args.push_back(v >= 0 ? vals[v] : torch::Tensor());
        // In place only on a fresh tensor (not a view another value may share) read for the last time.
        const bool reuse0 = !n.in.empty() && n.in[0] >= 0 && !pinned[n.in[0]] && uses[n.in[0]] == 1 &&
                            (n.in.size() < 2 || n.in[1] != n.in[0]) && producer[n.in[0]] >= 0 &&
                            fresh_ops().count(nodes[producer[n.in[0]]].op);
        torch::Tensor r;
        try {
          r = eval(n, args, reuse0);

        } catch (const c10::Error& e) {
          fail(n, first_line(e.what_without_backtrace()));
        }
        args.clear();
        vals[n.out[0]] = r;
        if (n.is_static) {
          std::lock_guard<std::mutex> lock(cache_mutex);
          (*cache)[n.out[0]] = r;
          pinned[n.out[0]] = 1;
        }
      }
      if (n.is_static) pinned[n.out[0]] = 1;
      for (int v : n.in)
        if (v >= 0 && --uses[v] == 0 && !pinned[v]) vals[v] = torch::Tensor();
    }
    std::vector<Tensor> out;
    for (int v : out_ids) {
      SEMAT_CHECK(vals[v].defined(), ModelError, file << ": value '" << value_names[v] << "' was not computed");
      auto c = vals[v].to(torch::kCPU).to(torch::kFloat).contiguous();
      Tensor t;
      t.shape.assign(c.sizes().begin(), c.sizes().end());
      t.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
      out.push_back(std::move(t));
    }
    return out;
  }
};

namespace {

torch::Device pick_device(const std::string& device) {
  if (device == "cpu") return torch::kCPU;
  if (device == "cuda" || device == "auto") {
    if (torch::cuda::is_available()) return torch::kCUDA;
    SEMAT_CHECK(device == "auto", InvalidArgument, "device cuda requested but CUDA is not available");
    return torch::kCPU;
  }
  throw InvalidArgument("unknown device '" + device + "' (cpu, cuda, auto)");
}

std::unique_ptr<Model::Impl> load_bytes(const std::string& bytes, const std::string& name,
                                        const std::string& device, const std::string& precision) {
  auto impl = std::make_unique<Model::Impl>();
  impl->file = name;
  impl->device = pick_device(device);
  if (models::resolve_precision(precision, impl->device.is_cuda() ? "cuda" : "cpu") ==
      models::Precision::kBFloat16)
    impl->compute = torch::kBFloat16;
  pb::ModelProto proto;
  if (bytes.empty()) impl->fail("empty file, not an ONNX model");
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    impl->fail("larger than 2 GiB, not supported");
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    impl->fail("not a valid ONNX protobuf (truncated or corrupt file)");
  impl->load(proto);
  return impl;
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Model::Model(const std::string& path, const std::string& device, const std::string& precision) {
  // A device or pipe (/dev/zero) would be read without end.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(path + ": not a regular file (missing, a folder, a device or a pipe), not an ONNX model");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(path + ": cannot open the ONNX model");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw IoError(path + ": read error");
  impl_ = load_bytes(bytes, path, device, precision);
}

Model Model::from_bytes(const std::string& bytes, const std::string& name, const std::string& device,
                        const std::string& precision) {
  return Model(load_bytes(bytes, name, device, precision));
}

Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const std::vector<ValueInfo>& Model::inputs() const { return impl_->inputs; }
const std::vector<ValueInfo>& Model::outputs() const { return impl_->outputs; }
std::string Model::device() const { return impl_->device.is_cuda() ? "cuda" : "cpu"; }
std::string Model::precision() const { return impl_->compute == torch::kBFloat16 ? "bf16" : "fp32"; }

std::vector<Tensor> Model::run(const std::vector<std::pair<std::string, Tensor>>& inputs,
                               const std::vector<std::string>& outputs) const {
  return impl_->run(inputs, outputs);
}

}  // namespace semat::onnx
