// The ONNX importer on small graphs built here with libonnx's protobuf classes, each compared
// with a slow loop implementation of the op's ONNX definition; the error paths; and, when the
// IS-Net model is installed, the whole network against ONNX Runtime's outputs
// (tests/data/isnet_ref).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>
#include <random>

#include <unistd.h>

#include "semat/core/error.h"
#include "semat/io/checkpoint.h"
#include "semat/io/model_store.h"
#include "semat/models/precision.h"
#include "semat/onnx/isnet.h"
#include "semat/onnx/model.h"

namespace pb = ::onnx;
using semat::onnx::Model;
using semat::onnx::ModelError;
using semat::onnx::Tensor;

namespace {

// ---- graph building -----------------------------------------------------------------------

struct Graph {
  pb::ModelProto m;
  pb::GraphProto* g;
  Graph() {
    m.set_ir_version(8);
    m.add_opset_import()->set_version(15);
    g = m.mutable_graph();
    g->set_name("test");
  }
  void input(const std::string& name, const std::vector<std::int64_t>& dims) {
    auto* vi = g->add_input();
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(pb::TensorProto::FLOAT);
    for (auto d : dims) {
      auto* dim = tt->mutable_shape()->add_dim();
      if (d >= 0) dim->set_dim_value(d);
      else dim->set_dim_param("n");
    }
  }
  void output(const std::string& name) { g->add_output()->set_name(name); }
  pb::TensorProto* init(const std::string& name, const std::vector<std::int64_t>& dims, int type) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (auto d : dims) t->add_dims(d);
    return t;
  }
  void f32(const std::string& name, const std::vector<std::int64_t>& dims, const std::vector<float>& v,
           bool raw = true) {
    auto* t = init(name, dims, pb::TensorProto::FLOAT);
    if (raw) t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
    else for (float x : v) t->add_float_data(x);
  }
  void f16(const std::string& name, const std::vector<std::int64_t>& dims,
           const std::vector<std::uint16_t>& bits, bool raw) {
    auto* t = init(name, dims, pb::TensorProto::FLOAT16);
    if (raw) t->set_raw_data(std::string(reinterpret_cast<const char*>(bits.data()), bits.size() * 2));
    else for (auto b : bits) t->add_int32_data(b);
  }
  void i64(const std::string& name, const std::vector<std::int64_t>& v) {
    auto* t = init(name, {static_cast<std::int64_t>(v.size())}, pb::TensorProto::INT64);
    for (auto x : v) t->add_int64_data(x);
  }
  pb::NodeProto* node(const std::string& op, const std::vector<std::string>& in,
                      const std::vector<std::string>& out, const std::string& name = "") {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + std::to_string(g->node_size()) : name);
    for (const auto& s : in) n->add_input(s);
    for (const auto& s : out) n->add_output(s);
    return n;
  }
  std::string bytes() const { return m.SerializeAsString(); }
  Model load() const { return Model::from_bytes(bytes(), "test.onnx"); }
};

void ints(pb::NodeProto* n, const std::string& k, const std::vector<std::int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(k);
  a->set_type(pb::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}
void int1(pb::NodeProto* n, const std::string& k, std::int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(k);
  a->set_type(pb::AttributeProto::INT);
  a->set_i(v);
}
void str(pb::NodeProto* n, const std::string& k, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(k);
  a->set_type(pb::AttributeProto::STRING);
  a->set_s(v);
}

std::vector<float> random_values(std::size_t n, unsigned seed, float lo = -1, float hi = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

Tensor make(const std::vector<std::int64_t>& shape, unsigned seed) {
  std::size_t n = 1;
  for (auto d : shape) n *= static_cast<std::size_t>(d);
  return Tensor{shape, random_values(n, seed)};
}

void expect_close(const Tensor& got, const Tensor& want, float tol = 1e-5f) {
  ASSERT_EQ(got.shape, want.shape);
  ASSERT_EQ(got.data.size(), want.data.size());
  float worst = 0;
  for (std::size_t i = 0; i < got.data.size(); ++i) worst = std::max(worst, std::abs(got.data[i] - want.data[i]));
  EXPECT_LE(worst, tol);
}

// ---- reference implementations (ONNX definitions, NCHW loops) ---------------------------

struct ConvParams {
  std::vector<std::int64_t> strides{1, 1}, pads{0, 0, 0, 0}, dil{1, 1};
  std::int64_t group = 1;
};

Tensor ref_conv(const Tensor& x, const Tensor& w, const std::vector<float>& bias, const ConvParams& p) {
  const auto N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const auto M = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3];
  const auto OH = (H + p.pads[0] + p.pads[2] - ((KH - 1) * p.dil[0] + 1)) / p.strides[0] + 1;
  const auto OW = (W + p.pads[1] + p.pads[3] - ((KW - 1) * p.dil[1] + 1)) / p.strides[1] + 1;
  Tensor y{{N, M, OH, OW}, std::vector<float>(static_cast<std::size_t>(N * M * OH * OW))};
  const auto Mg = M / p.group;
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t oy = 0; oy < OH; ++oy)
        for (std::int64_t ox = 0; ox < OW; ++ox) {
          double acc = bias.empty() ? 0.0 : bias[m];
          const auto g = m / Mg;
          for (std::int64_t c = 0; c < Cg; ++c)
            for (std::int64_t ky = 0; ky < KH; ++ky)
              for (std::int64_t kx = 0; kx < KW; ++kx) {
                const auto iy = oy * p.strides[0] - p.pads[0] + ky * p.dil[0];
                const auto ix = ox * p.strides[1] - p.pads[1] + kx * p.dil[1];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += static_cast<double>(x.data[((n * C + g * Cg + c) * H + iy) * W + ix]) *
                       w.data[((m * Cg + c) * KH + ky) * KW + kx];
              }
          y.data[((n * M + m) * OH + oy) * OW + ox] = static_cast<float>(acc);
        }
  return y;
}

Tensor ref_maxpool(const Tensor& x, std::int64_t k, std::int64_t s, std::int64_t pad, bool ceil_mode) {
  const auto N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  auto out = [&](std::int64_t in) {
    const double v = static_cast<double>(in + 2 * pad - k) / s;
    return static_cast<std::int64_t>(ceil_mode ? std::ceil(v) : std::floor(v)) + 1;
  };
  const auto OH = out(H), OW = out(W);
  Tensor y{{N, C, OH, OW}, std::vector<float>(static_cast<std::size_t>(N * C * OH * OW))};
  for (std::int64_t nc = 0; nc < N * C; ++nc)
    for (std::int64_t oy = 0; oy < OH; ++oy)
      for (std::int64_t ox = 0; ox < OW; ++ox) {
        float best = -std::numeric_limits<float>::infinity();
        for (std::int64_t ky = 0; ky < k; ++ky)
          for (std::int64_t kx = 0; kx < k; ++kx) {
            const auto iy = oy * s - pad + ky, ix = ox * s - pad + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            best = std::max(best, x.data[(nc * H + iy) * W + ix]);
          }
        y.data[(nc * OH + oy) * OW + ox] = best;
      }
  return y;
}

// Linear resize, half_pixel coordinates: x_in = (x_out + 0.5) / scale - 0.5, clamped to the image.
Tensor ref_resize(const Tensor& x, std::int64_t OH, std::int64_t OW, double sh, double sw) {
  const auto N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  Tensor y{{N, C, OH, OW}, std::vector<float>(static_cast<std::size_t>(N * C * OH * OW))};
  auto coord = [](std::int64_t o, double scale, std::int64_t in, std::int64_t* i0, std::int64_t* i1,
                  double* f) {
    double v = (o + 0.5) / scale - 0.5;
    v = std::clamp(v, 0.0, static_cast<double>(in - 1));
    *i0 = static_cast<std::int64_t>(std::floor(v));
    *i1 = std::min(*i0 + 1, in - 1);
    *f = v - *i0;
  };
  for (std::int64_t nc = 0; nc < N * C; ++nc)
    for (std::int64_t oy = 0; oy < OH; ++oy)
      for (std::int64_t ox = 0; ox < OW; ++ox) {
        std::int64_t y0, y1, x0, x1;
        double fy, fx;
        coord(oy, sh, H, &y0, &y1, &fy);
        coord(ox, sw, W, &x0, &x1, &fx);
        auto at = [&](std::int64_t yy, std::int64_t xx) { return x.data[(nc * H + yy) * W + xx]; };
        const double v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
                         fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
        y.data[(nc * OH + oy) * OW + ox] = static_cast<float>(v);
      }
  return y;
}

// IEEE half -> float, bit by bit.
float half_to_float(std::uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
  double v;
  if (exp == 0) v = std::ldexp(mant, -24);
  else if (exp == 31) v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else v = std::ldexp(1024 + mant, exp - 25);
  return static_cast<float>(sign ? -v : v);
}

Tensor run1(const Model& m, const Tensor& x, const std::string& in = "x") {
  auto out = m.run({{in, x}});
  EXPECT_EQ(out.size(), 1u);
  return out.at(0);
}

// ---- ops ----------------------------------------------------------------------------------

struct ConvCase {
  std::vector<std::int64_t> x, w;
  ConvParams p;
};

TEST(OnnxOps, ConvMatchesLoopsForStridesPadsDilationsGroups) {
  const std::vector<ConvCase> cases = {
      {{1, 3, 9, 8}, {4, 3, 3, 3}, {{1, 1}, {1, 1, 1, 1}, {1, 1}, 1}},
      {{1, 3, 9, 8}, {5, 3, 3, 3}, {{2, 2}, {1, 1, 1, 1}, {1, 1}, 1}},   // stride 2, odd size
      {{2, 2, 17, 19}, {3, 2, 3, 3}, {{1, 1}, {4, 4, 4, 4}, {4, 4}, 1}},  // dilated
      {{1, 2, 12, 11}, {2, 2, 3, 3}, {{1, 1}, {8, 8, 8, 8}, {8, 8}, 1}},  // dilation 8 > size/2
      {{1, 4, 7, 6}, {6, 2, 3, 3}, {{1, 2}, {0, 1, 2, 1}, {2, 1}, 2}},    // groups, asymmetric pads
      {{1, 3, 5, 5}, {2, 3, 1, 1}, {{1, 1}, {0, 0, 0, 0}, {1, 1}, 1}},
  };
  unsigned seed = 1;
  for (const auto& c : cases) {
    Graph g;
    g.input("x", c.x);
    const Tensor w = make(c.w, seed++);
    const auto bias = random_values(static_cast<std::size_t>(c.w[0]), seed++);
    g.f32("w", c.w, w.data, seed % 2 == 0);
    g.f32("b", {c.w[0]}, bias, seed % 2 == 1);
    auto* n = g.node("Conv", {"x", "w", "b"}, {"y"});
    ints(n, "kernel_shape", {c.w[2], c.w[3]});
    ints(n, "strides", c.p.strides);
    ints(n, "pads", c.p.pads);
    ints(n, "dilations", c.p.dil);
    int1(n, "group", c.p.group);
    g.output("y");
    const Tensor x = make(c.x, seed++);
    expect_close(run1(g.load(), x), ref_conv(x, w, bias, c.p));
  }
}

TEST(OnnxOps, Fp16InitializersRawAndTypedBecomeFloat32) {
  for (bool raw : {true, false}) {
    Graph g;
    g.input("x", {1, 2, 6, 5});
    std::vector<std::uint16_t> bits;
    std::mt19937 rng(7);
    for (int i = 0; i < 3 * 2 * 3 * 3; ++i) {
      // Normal halves of both signs, exponents around 1 (|w| in [2^-4, 2)).
      const std::uint16_t sign = (rng() & 1) << 15;
      const std::uint16_t exp = static_cast<std::uint16_t>(11 + rng() % 5);
      bits.push_back(static_cast<std::uint16_t>(sign | (exp << 10) | (rng() & 1023)));
    }
    bits[0] = 0x0001;  // a subnormal
    g.f16("w", {3, 2, 3, 3}, bits, raw);
    auto* n = g.node("Conv", {"x", "w"}, {"y"});
    ints(n, "pads", {1, 1, 1, 1});
    g.output("y");
    Tensor w{{3, 2, 3, 3}, {}};
    for (auto b : bits) w.data.push_back(half_to_float(b));
    ConvParams p;
    p.pads = {1, 1, 1, 1};
    const Tensor x = make({1, 2, 6, 5}, 3);
    expect_close(run1(g.load(), x), ref_conv(x, w, {}, p));
  }
}

TEST(OnnxOps, MaxPoolCeilModeOnOddSizesAndPadding) {
  struct Case { std::vector<std::int64_t> x; std::int64_t k, s, pad; bool ceil; };
  const std::vector<Case> cases = {{{1, 2, 7, 5}, 2, 2, 0, true}, {{1, 2, 7, 5}, 2, 2, 0, false},
                                   {{1, 1, 9, 9}, 3, 2, 1, true}, {{2, 3, 6, 6}, 3, 2, 1, true},
                                   {{1, 1, 1, 3}, 2, 2, 0, true}};
  unsigned seed = 11;
  for (const auto& c : cases) {
    Graph g;
    g.input("x", c.x);
    auto* n = g.node("MaxPool", {"x"}, {"y"});
    ints(n, "kernel_shape", {c.k, c.k});
    ints(n, "strides", {c.s, c.s});
    ints(n, "pads", {c.pad, c.pad, c.pad, c.pad});
    int1(n, "ceil_mode", c.ceil ? 1 : 0);
    g.output("y");
    const Tensor x = make(c.x, seed++);
    expect_close(run1(g.load(), x), ref_maxpool(x, c.k, c.s, c.pad, c.ceil), 0.0f);
  }
}

TEST(OnnxOps, ResizeLinearHalfPixelBySizesUpAndDown) {
  const std::vector<std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>> cases = {
      {{1, 2, 5, 7}, {11, 16}}, {{1, 2, 11, 16}, {4, 5}}, {{2, 1, 6, 6}, {6, 13}}, {{1, 1, 8, 3}, {3, 9}}};
  unsigned seed = 21;
  for (const auto& [xs, size] : cases) {
    Graph g;
    g.input("x", xs);
    g.i64("sizes", {xs[0], xs[1], size[0], size[1]});
    auto* n = g.node("Resize", {"x", "", "", "sizes"}, {"y"});
    str(n, "mode", "linear");
    str(n, "coordinate_transformation_mode", "half_pixel");
    g.output("y");
    const Tensor x = make(xs, seed++);
    expect_close(run1(g.load(), x), ref_resize(x, size[0], size[1], static_cast<double>(size[0]) / xs[2],
                                               static_cast<double>(size[1]) / xs[3]));
  }
}

TEST(OnnxOps, ResizeLinearHalfPixelByScales) {
  for (const double s : {2.0, 0.5, 1.5}) {
    Graph g;
    g.input("x", {1, 2, 6, 9});
    g.f32("roi", {0}, {});
    g.f32("scales", {4}, {1.0f, 1.0f, static_cast<float>(s), static_cast<float>(s)});
    auto* n = g.node("Resize", {"x", "roi", "scales"}, {"y"});
    str(n, "mode", "linear");
    g.output("y");
    const Tensor x = make({1, 2, 6, 9}, 31);
    const auto oh = static_cast<std::int64_t>(std::floor(6 * s)), ow = static_cast<std::int64_t>(std::floor(9 * s));
    expect_close(run1(g.load(), x), ref_resize(x, oh, ow, s, s));
  }
}

// IS-Net's decoder pattern: the upsampling size read from another tensor's shape.
TEST(OnnxOps, ShapeSliceConcatDriveResizeAndFollowTheInputSize) {
  Graph g;
  g.input("x", {1, 2, -1, -1});
  g.input("skip", {1, 3, -1, -1});
  g.i64("starts", {2});
  g.i64("ends", {4});
  g.i64("axes", {0});
  g.node("Shape", {"skip"}, {"s"});
  g.node("Slice", {"s", "starts", "ends", "axes"}, {"hw"});
  auto* k = g.node("Constant", {}, {"nc"});
  auto* a = k->add_attribute();
  a->set_name("value");
  a->set_type(pb::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(pb::TensorProto::INT64);
  a->mutable_t()->add_dims(2);
  a->mutable_t()->add_int64_data(1);
  a->mutable_t()->add_int64_data(2);
  int1(g.node("Concat", {"nc", "hw"}, {"sizes"}), "axis", 0);
  auto* r = g.node("Resize", {"x", "", "", "sizes"}, {"up"});
  str(r, "mode", "linear");
  str(r, "coordinate_transformation_mode", "half_pixel");
  int1(g.node("Cast", {"up"}, {"up16"}), "to", 10);
  int1(g.node("Cast", {"up16"}, {"up32"}), "to", 1);
  g.node("Relu", {"skip"}, {"skip_r"});
  int1(g.node("Concat", {"up32", "skip_r"}, {"cat"}), "axis", 1);
  g.node("Sigmoid", {"cat"}, {"sig"});
  g.node("Add", {"sig", "cat"}, {"y"});
  g.output("y");
  const Model m = g.load();
  for (const auto& hw : std::vector<std::pair<std::int64_t, std::int64_t>>{{5, 7}, {9, 4}, {5, 7}}) {
    const Tensor x = make({1, 2, 4, 3}, 41);
    const Tensor skip = make({1, 3, hw.first, hw.second}, 42);
    const Tensor up = ref_resize(x, hw.first, hw.second, static_cast<double>(hw.first) / 4,
                                 static_cast<double>(hw.second) / 3);
    Tensor want{{1, 5, hw.first, hw.second}, up.data};
    for (float v : skip.data) want.data.push_back(std::max(v, 0.0f));
    for (auto& v : want.data) v = v + 1.0f / (1.0f + std::exp(-v));
    auto out = m.run({{"x", x}, {"skip", skip}});
    expect_close(out.at(0), want);
  }
}

TEST(OnnxOps, GatherAndCastReadShapes) {
  Graph g;
  g.input("x", {1, 2, -1, -1});
  g.i64("idx", {3, 2});
  g.node("Shape", {"x"}, {"s"});
  int1(g.node("Gather", {"s", "idx"}, {"wh"}), "axis", 0);
  int1(g.node("Cast", {"wh"}, {"whf"}), "to", 1);
  g.output("whf");
  const Tensor out = run1(g.load(), make({1, 2, 6, 9}, 1));
  EXPECT_EQ(out.shape, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(out.data, (std::vector<float>{9, 6}));
}

TEST(OnnxOps, OnlyTheNodesTheOutputNeedsRunAndOutputsComeInTheOrderAsked) {
  Graph g;
  g.input("x", {1, 1, 2, 2});
  g.node("Relu", {"x"}, {"r"});
  g.node("Sigmoid", {"x"}, {"s"});
  g.output("s");
  g.output("r");
  const Model m = g.load();
  const Tensor x{{1, 1, 2, 2}, {-1, 0, 2, -3}};
  const auto first = m.run({{"x", x}});
  ASSERT_EQ(first.size(), 1u);
  EXPECT_NEAR(first[0].data[2], 1 / (1 + std::exp(-2.0)), 1e-6);
  const auto both = m.run({{"x", x}}, {"r", "s"});
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0].data, (std::vector<float>{0, 0, 2, 0}));
  EXPECT_EQ(x.data, (std::vector<float>{-1, 0, 2, -3})) << "the caller's input was modified";
}

// ---- errors ------------------------------------------------------------------------------

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const semat::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(OnnxErrors, UnsupportedOpIsOneLineNamingTheOpAndTheNode) {
  Graph g;
  g.input("x", {1, 4});
  g.node("Softmax", {"x"}, {"y"}, "head/softmax");
  g.output("y");
  EXPECT_THROW(g.load(), ModelError);
  const std::string msg = error_of([&] { g.load(); });
  EXPECT_NE(msg.find("Softmax"), std::string::npos) << msg;
  EXPECT_NE(msg.find("head/softmax"), std::string::npos) << msg;
  EXPECT_NE(msg.find("test.onnx"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(OnnxErrors, TruncatedCorruptAndMissingFilesNameTheFile) {
  Graph g;
  g.input("x", {1, 3, 8, 8});
  g.f32("w", {4, 3, 3, 3}, random_values(108, 5));
  g.node("Conv", {"x", "w"}, {"y"});
  g.output("y");
  const std::string bytes = g.bytes();
  const auto dir = std::filesystem::temp_directory_path() / ("semat_onnx_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& data) {
    std::ofstream(dir / name, std::ios::binary) << data;
    return (dir / name).string();
  };
  const std::string whole = write("ok.onnx", bytes);
  EXPECT_NO_THROW(Model{whole});
  for (const auto& [name, data] : std::vector<std::pair<std::string, std::string>>{
           {"truncated.onnx", bytes.substr(0, bytes.size() / 2)},
           {"text.onnx", "this is not a protobuf at all\n"},
           {"empty.onnx", ""},
           {"garbage.onnx", std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11)}}) {
    const std::string path = write(name, data);
    EXPECT_THROW(Model{path}, ModelError) << name;
    const std::string msg = error_of([&] { Model m(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_THROW(Model{(dir / "absent.onnx").string()}, semat::IoError);
  // Issue #14: a device used to be read without a bound.
  EXPECT_THROW(Model{"/dev/zero"}, semat::IoError);
  std::filesystem::remove_all(dir);
}

TEST(OnnxErrors, MissingInitializerAndBadInitializerSize) {
  Graph g;
  g.input("x", {1, 3, 8, 8});
  g.node("Conv", {"x", "weight_that_is_not_there"}, {"y"}, "enc/conv1");
  g.output("y");
  const std::string msg = error_of([&] { g.load(); });
  EXPECT_NE(msg.find("weight_that_is_not_there"), std::string::npos) << msg;
  EXPECT_NE(msg.find("enc/conv1"), std::string::npos) << msg;

  Graph h;
  h.input("x", {1, 3, 8, 8});
  auto* t = h.init("w", {4, 3, 3, 3}, pb::TensorProto::FLOAT);
  t->set_raw_data(std::string(100, '\0'));
  h.node("Conv", {"x", "w"}, {"y"});
  h.output("y");
  EXPECT_THROW(h.load(), ModelError);
}

// Issue #14: dims whose product overflows int64 must not wrap into a count matching the data.
TEST(OnnxErrors, OverflowingInitializerDimsAreRefused) {
  Graph h;
  h.input("x", {1, 3, 8, 8});
  // 2^62 * 4 wraps to 0 in int64 arithmetic, which an empty raw_data would match.
  auto* t = h.init("w", {std::int64_t{1} << 62, 4, 1, 1}, pb::TensorProto::FLOAT);
  t->set_raw_data(std::string());
  h.node("Conv", {"x", "w"}, {"y"});
  h.output("y");
  const std::string msg = error_of([&] { h.load(); });
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
}

// Found by fuzz_onnx (corpus/onnx/regress_empty_huge_dims): a zero dim made the count 0, so
// [0, 2^62, 2^62] with no data passed the count check and LibTorch's stride arithmetic overflowed
// inside code that cannot throw (std::terminate). Now one line naming the initializer.
TEST(OnnxErrors, HugeDimsBesideAZeroDimAreRefused) {
  Graph h;
  h.input("x", {1, 3, 8, 8});
  auto* t = h.init("w", {0, std::int64_t{1} << 62, std::int64_t{1} << 62}, pb::TensorProto::FLOAT);
  (void)t;  // no values: the dims say 0 of them
  h.node("Conv", {"x", "w"}, {"y"});
  h.output("y");
  const std::string msg = error_of([&] { h.load(); });
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("absurdly large"), std::string::npos) << msg;
}

// Issue #14 (found by fuzz_onnx): a huge Resize scale overflowed the conversion of the output
// side to int64 (undefined behaviour); huge pads, sizes or broadcasts would allocate without
// bound. Each is now one line naming the node, before LibTorch allocates anything.
TEST(OnnxErrors, OversizedResizePadsAndBroadcastsAreOneLineErrors) {
  const Tensor x = make({1, 1, 4, 4}, 3);
  auto one_line = [](const std::string& msg, const std::string& want) {
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  for (const float scale : {5.7e31f, std::numeric_limits<float>::quiet_NaN(), -2.0f, 70000.0f}) {
    Graph g;
    g.input("x", {1, 1, 4, 4});
    g.f32("scales", {4}, {1.0f, 1.0f, scale, scale});
    str(g.node("Resize", {"x", "", "scales"}, {"y"}, "up"), "mode", "linear");
    g.output("y");
    const Model m = g.load();
    one_line(error_of([&] { m.run({{"x", x}}); }), "node 'up' (Resize)");
  }
  {
    Graph g;
    g.input("x", {1, 1, 4, 4});
    g.i64("sizes", {1, 1, 100000, 100000});
    str(g.node("Resize", {"x", "", "", "sizes"}, {"y"}, "up"), "mode", "linear");
    g.output("y");
    const Model m = g.load();
    one_line(error_of([&] { m.run({{"x", x}}); }), "over the limit");
  }
  {
    Graph g;
    g.input("x", {1, 1, 4, 4});
    g.f32("w", {1, 1, 1, 1}, {1.0f});
    auto* n = g.node("Conv", {"x", "w"}, {"y"}, "padded");
    ints(n, "pads", {1000000000, 0, 0, 0});
    g.output("y");
    const Model m = g.load();
    one_line(error_of([&] { m.run({{"x", x}}); }), "pads value 1000000000 is out of range");
  }
  {
    Graph g;
    g.input("x", {1, 1, 4, 4});
    g.f32("col", {20000, 1}, std::vector<float>(20000, 1.0f));
    g.f32("row", {1, 20000}, std::vector<float>(20000, 1.0f));
    g.node("Mul", {"col", "row"}, {"y"}, "outer");
    g.output("y");
    const Model m = g.load();
    one_line(error_of([&] { m.run({{"x", x}}); }), "node 'outer' (Mul): would produce a 20000 x 20000 tensor");
  }
}

TEST(OnnxErrors, WrongInputRankOrSizeOrMissingInput) {
  Graph g;
  g.input("x", {1, 3, -1, -1});
  g.node("Relu", {"x"}, {"y"});
  g.output("y");
  const Model m = g.load();
  EXPECT_THROW(m.run({{"x", make({3, 8, 8}, 1)}}), semat::InvalidArgument);
  EXPECT_THROW(m.run({{"x", make({1, 2, 8, 8}, 1)}}), semat::InvalidArgument);
  EXPECT_THROW(m.run({{"y", make({1, 3, 8, 8}, 1)}}), semat::InvalidArgument);
  EXPECT_THROW(m.run({{"x", Tensor{{1, 3, 2, 2}, {1, 2}}}}), semat::InvalidArgument);
  EXPECT_NO_THROW(m.run({{"x", make({1, 3, 5, 6}, 1)}}));
}

TEST(OnnxErrors, IsNetRefusesAModelWithoutOneNchwInput) {
  Graph g;
  g.input("x", {1, 4});
  g.node("Relu", {"x"}, {"y"});
  g.output("y");
  const auto path = std::filesystem::temp_directory_path() / ("semat_onnx_flat_" + std::to_string(::getpid()) + ".onnx");
  std::ofstream(path, std::ios::binary) << g.bytes();
  const std::string msg = error_of([&] { semat::onnx::IsNet net(path.string()); });
  std::filesystem::remove(path);
  EXPECT_NE(msg.find("not an IS-Net model"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
}

// ---- IS-Net against ONNX Runtime ----------------------------------------------------------

// The installed model (the models folder: SEMAT_MODELS, else the default; semat/io/model_store.h).

// ---- bf16 (--precision bf16) against float32 ------------------------------------------------

bool native_bf16() {
  const char* env = std::getenv("SEMAT_CPU_BF16");
  return (env == nullptr || *env == '\0') && semat::models::cpu_has_native_bf16();
}

// Conv, Relu, a residual Add, MaxPool, Resize back up, Concat, a 1x1 Conv and the Sigmoid: the
// ops IS-Net is made of, on random weights.
std::string small_net() {
  Graph g;
  g.input("x", {1, 3, 32, 32});
  unsigned seed = 40;
  auto conv = [&](const std::string& name, const std::string& in, std::int64_t co, std::int64_t ci,
                  std::int64_t k) {
    g.f32(name + ".w", {co, ci, k, k}, random_values(static_cast<std::size_t>(co * ci * k * k), seed++, -0.4f, 0.4f));
    g.f32(name + ".b", {co}, random_values(static_cast<std::size_t>(co), seed++, -0.2f, 0.2f));
    auto* n = g.node("Conv", {in, name + ".w", name + ".b"}, {name});
    ints(n, "pads", {k / 2, k / 2, k / 2, k / 2});
  };
  conv("c1", "x", 16, 3, 3);
  g.node("Relu", {"c1"}, {"r1"});
  conv("c2", "r1", 16, 16, 3);
  g.node("Add", {"c2", "r1"}, {"s"});
  g.node("Relu", {"s"}, {"r2"});
  auto* mp = g.node("MaxPool", {"r2"}, {"p"});
  ints(mp, "kernel_shape", {2, 2});
  ints(mp, "strides", {2, 2});
  g.i64("sizes", {1, 16, 32, 32});
  auto* rs = g.node("Resize", {"p", "", "", "sizes"}, {"u"});
  str(rs, "mode", "linear");
  auto* cat = g.node("Concat", {"u", "r1"}, {"c"});
  int1(cat, "axis", 1);
  conv("c3", "c", 1, 32, 1);
  g.node("Sigmoid", {"c3"}, {"y"});
  g.output("y");
  return g.bytes();
}

TEST(OnnxBf16, SmallNetStaysCloseToFloat32) {
  if (!native_bf16()) GTEST_SKIP() << "this CPU has no native bf16 units (AMX-BF16 / AVX512-BF16)";
  const Model fp32 = Model::from_bytes(small_net(), "small.onnx", "cpu", "fp32");
  const Model bf16 = Model::from_bytes(small_net(), "small.onnx", "cpu", "bf16");
  EXPECT_EQ(fp32.precision(), "fp32");
  EXPECT_EQ(bf16.precision(), "bf16");
  const Tensor x = make({1, 3, 32, 32}, 5);
  const Tensor a = run1(fp32, x), b = run1(bf16, x);
  ASSERT_EQ(a.data.size(), b.data.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.data.size(); ++i) worst = std::max(worst, std::abs(double(a.data[i]) - b.data[i]));
  std::printf("[ bf16 ] small net: max abs probability difference %.3g\n", worst);
  EXPECT_LT(worst, 0.01);  // measured 0.003
  EXPECT_GT(worst, 0.0) << "bf16 gave float32's exact result: the bf16 path did not run";
}

TEST(OnnxBf16, RefusedWhereNotNative) {
  setenv("SEMAT_CPU_BF16", "0", 1);
  EXPECT_THROW(Model::from_bytes(small_net(), "small.onnx", "cpu", "bf16"), semat::ConfigError);
  EXPECT_EQ(Model::from_bytes(small_net(), "small.onnx", "cpu", "auto").precision(), "fp32");
  unsetenv("SEMAT_CPU_BF16");
}

// Under ctest the engine's folder is hidden (SEMAT_MODELS is an empty one) and SEMAT_TEST_MODELS
// names the folder `make models` filled.
std::string isnet_path() {
  const char* dir = std::getenv("SEMAT_TEST_MODELS");
  if (dir && *dir) {
    const semat::io::ModelCheck c = semat::io::check_model(semat::io::known_model("isnet-medium"), dir, false);
    return c.state == semat::io::ModelState::installed ? c.path : std::string();
  }
  return semat::io::find_model("isnet-medium").value_or(std::string());
}

TEST(IsNet, MatchesOnnxRuntimeOnTheStoredImages) {
  const std::string path = isnet_path();
  if (path.empty()) GTEST_SKIP() << semat::io::install_hint("isnet-medium");
  const auto ref = semat::io::load_checkpoint(std::string(SEMAT_TEST_DATA) +
                                              "/isnet_ref/reference_outputs.safetensors");
  const semat::onnx::IsNet net(path);
  for (const std::string name : {"astronaut", "chelsea"}) {
    const auto& rgb = ref.at(name + ".input_rgb_u8");
    const auto& want = ref.at(name + ".output");
    ASSERT_EQ(rgb.shape, (std::vector<std::int64_t>{1024, 1024, 3}));
    ASSERT_EQ(want.shape, (std::vector<std::int64_t>{1, 1, 1024, 1024}));
    cv::Mat img(1024, 1024, CV_8UC3, const_cast<std::uint8_t*>(rgb.bytes.data()));
    const cv::Mat got = net.probability_1024(img);
    const auto* w = reinterpret_cast<const float*>(want.bytes.data());
    double worst = 0, sum = 0;
    for (int i = 0; i < 1024 * 1024; ++i) {
      const double d = std::abs(static_cast<double>(got.ptr<float>(0)[i]) - w[i]);
      worst = std::max(worst, d);
      sum += d;
    }
    std::printf("[ isnet ] %s: max abs difference %.3g, mean %.3g\n", name.c_str(), worst,
                sum / (1024.0 * 1024.0));
    EXPECT_LE(worst, 2e-3) << name;
  }
}

// The real IS-Net in bf16 against float32 on the two stored images.
TEST(IsNet, Bf16StaysCloseToFloat32OnTheStoredImages) {
  const std::string path = isnet_path();
  if (path.empty()) GTEST_SKIP() << semat::io::install_hint("isnet-medium");
  if (!native_bf16()) GTEST_SKIP() << "this CPU has no native bf16 units (AMX-BF16 / AVX512-BF16)";
  const auto ref = semat::io::load_checkpoint(std::string(SEMAT_TEST_DATA) +
                                              "/isnet_ref/reference_outputs.safetensors");
  const semat::onnx::IsNet fp32(path, "cpu", "fp32"), bf16(path, "cpu", "bf16");
  EXPECT_EQ(bf16.precision(), "bf16");
  for (const std::string name : {"astronaut", "chelsea"}) {
    const auto& rgb = ref.at(name + ".input_rgb_u8");
    cv::Mat img(1024, 1024, CV_8UC3, const_cast<std::uint8_t*>(rgb.bytes.data()));
    const cv::Mat a = fp32.probability_1024(img), b = bf16.probability_1024(img);
    const double worst = cv::norm(a, b, cv::NORM_INF);
    const double flips = cv::countNonZero((a > 0.5) != (b > 0.5)) / (1024.0 * 1024.0);
    std::printf("[ isnet bf16 ] %s: max abs difference %.3g, share flipping at 0.5 %.3g\n", name.c_str(),
                worst, flips);
    // Measured: max abs 0.012 / 0.022, share flipping 7.6e-6 / 0.0016 (astronaut / chelsea).
    EXPECT_LT(worst, 0.06) << name;
    EXPECT_LT(flips, 0.004) << name;
  }
}

TEST(IsNet, ProbabilityHasTheCropSizeAndStaysInZeroOne) {
  const std::string path = isnet_path();
  if (path.empty()) GTEST_SKIP() << semat::io::install_hint("isnet-medium");
  const semat::onnx::IsNet net(path);
  cv::Mat bgr(90, 130, CV_8UC3, cv::Scalar(30, 200, 40));
  cv::rectangle(bgr, cv::Rect(40, 20, 50, 50), cv::Scalar(0, 0, 255), -1);
  const cv::Mat p = net.probability(bgr);
  ASSERT_EQ(p.type(), CV_32F);
  EXPECT_EQ(p.size(), bgr.size());
  double lo, hi;
  cv::minMaxLoc(p, &lo, &hi);
  EXPECT_GE(lo, 0.0);
  EXPECT_LE(hi, 1.0);
}

}  // namespace
