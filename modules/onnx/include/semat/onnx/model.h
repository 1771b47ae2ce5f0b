// An ONNX graph run by LibTorch, behind a torch-free facade. The file is read with Debian's
// libonnx protobuf classes; initializers (fp16 or fp32) become float32 tensors once, at load; the
// graph is ordered topologically once; the shape computations (Constant, Shape, Slice, Gather,
// Concat on int64 values...) are evaluated once per set of input shapes and cached. Every
// supported op maps to one LibTorch call; a graph with any other op is refused at load with one
// line naming the op type and the node. The graph runs in float32: Cast to float16 is kept in
// float32 (the fp16 graph's values are computed at higher precision, not rounded to fp16).
//
// Supported ops (opset <= 17 semantics): Conv (2-D, groups, pads, strides, dilations), Relu,
// MaxPool (2-D, kernel, strides, pads, dilations, ceil_mode), Resize (linear + half_pixel /
// pytorch_half_pixel / align_corners, sizes or scales), Concat, Add, Mul, Sub, Sigmoid, Cast,
// Constant, Shape, Slice (positive steps), Gather, Unsqueeze, Identity.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "semat/core/error.h"

namespace semat::onnx {

/// A model file that cannot be used: malformed protobuf, missing initializer, unsupported op or
/// attribute, wrong input rank. The message names the file (and the node when there is one).
class ModelError : public CheckpointError {
 public:
  using CheckpointError::CheckpointError;
};

/// A dense float32 tensor, row-major (NCHW for images). data.size() == product of shape.
struct Tensor {
  std::vector<std::int64_t> shape;
  std::vector<float> data;
};

/// Information about one graph input or output as declared in the file. Dimensions that are
/// symbolic or unknown are -1.
struct ValueInfo {
  std::string name;
  std::vector<std::int64_t> shape;
};

class Model {
 public:
  /// Reads and checks `path`. `device`: "cpu", "cuda" or "auto" (CUDA when available).
  /// `precision`: "fp32" (the reference), "bf16" or "auto" (semat/models/precision.h): in bf16
  /// the convolutions' weights are converted once here and the graph runs in bf16 from its
  /// inputs to its outputs (still returned as float32), with Sigmoid in float32.
  /// Throws IoError (unreadable file), ModelError, or ConfigError (bf16 where not native).
  explicit Model(const std::string& path, const std::string& device = "cpu",
                 const std::string& precision = "fp32");
  /// The same from the bytes of an ONNX file; `name` stands for the file in error messages.
  static Model from_bytes(const std::string& bytes, const std::string& name,
                          const std::string& device = "cpu", const std::string& precision = "fp32");
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  /// The graph inputs that are not initializers, and the graph outputs, in file order.
  const std::vector<ValueInfo>& inputs() const;
  const std::vector<ValueInfo>& outputs() const;
  /// "cpu" or "cuda".
  std::string device() const;
  /// What the graph runs in: "fp32" or "bf16".
  std::string precision() const;

  /// Runs the graph. `inputs`: every graph input by name, float32, with the declared rank (and
  /// the declared size on every fixed dimension). `outputs`: the names wanted (empty: the first
  /// graph output); only the nodes they depend on run. Returns them in the order asked.
  /// Throws InvalidArgument (missing input, wrong rank or size) or ModelError (a node fails on
  /// these shapes; the message names the node).
  std::vector<Tensor> run(const std::vector<std::pair<std::string, Tensor>>& inputs,
                          const std::vector<std::string>& outputs = {}) const;

 public:
  struct Impl;  // opaque (LibTorch inside)

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace semat::onnx
