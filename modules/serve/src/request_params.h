// Parsing of the matting parameters of a request (boxes, outputs, background), apart from the
// HTTP layer so that it can be fuzzed without sockets (fuzz/targets/fuzz_serve_request.cpp).
// Internal to semat_serve.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "semat/core/error.h"
#include "semat/core/geometry.h"

namespace semat::serve {

/// A request that cannot be served, with its HTTP status and a stable machine-readable code.
/// Only server.cpp turns it (and every other semat::Error) into a response.
class HttpError : public Error {
 public:
  HttpError(int status, std::string code, const std::string& message, int retry_after_s = 0)
      : Error(message), status_(status), code_(std::move(code)), retry_after_s_(retry_after_s) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }
  int retry_after_s() const { return retry_after_s_; }

 private:
  int status_;
  std::string code_;
  int retry_after_s_;
};

struct MatteParams {
  std::vector<Box> boxes;
  std::vector<std::string> outputs;
  cv::Scalar background{128, 128, 128};
  bool png = false;  ///< answer with one raw PNG
};

/// alpha, cutout, composite, trimap, overlay: every output a request may ask for.
const std::vector<std::string>& all_outputs();

/// A multipart form's field by name: its content, or null when the form has no such field.
using FormField = std::function<const std::string*(const char* name)>;

/// From multipart fields: `boxes` (JSON, required), `outputs` (JSON list or comma-separated),
/// `background` (a colour); text fields must be UTF-8. `png`: the client asked for one raw PNG
/// (Accept: image/png). Throws HttpError (400, 406) naming the field.
MatteParams matte_params_from_form(const FormField& field, bool png, int max_boxes);

/// From a JSON body {"boxes": ..., "outputs": [...], "background": "..."}; as above.
MatteParams matte_params_from_json(const std::string& body, bool png, int max_boxes);

/// Every box inside a width x height image and at least 2x2 pixels; HttpError (400) otherwise.
void check_boxes_in_image(const std::vector<Box>& boxes, int width, int height);

}  // namespace semat::serve
