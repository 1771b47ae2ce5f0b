#include "request_params.h"

#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>

#include "semat/io/json.h"
#include "semat/matting/compose.h"

namespace semat::serve {
namespace {

using json = nlohmann::json;
const std::vector<std::string> kAllOutputs = {"alpha", "cutout", "composite", "trimap", "overlay"};
const std::vector<std::string> kDefaultOutputs = {"alpha", "cutout", "composite"};

// Nesting is limited while parsing (io::parse_json): values are copied and described below, and
// both recurse on the value.
json parse_json_text(const std::string& text, const std::string& what) {
  try {
    return io::parse_json(text, what + " is not valid JSON");
  } catch (const DataError& e) {
    throw HttpError(400, "invalid_json", e.what());
  }
}

/// A multipart text field: must be UTF-8 (it may be quoted back in an answer).
const std::string& form_text(const std::string& content, const char* name) {
  if (!io::is_valid_utf8(content))
    throw HttpError(400, "invalid_utf8", std::string("the form field '") + name + "' is not valid UTF-8");
  return content;
}

/// `[[x0,y0,x1,y1], ...]` or a single `[x0,y0,x1,y1]`.
std::vector<Box> boxes_from_json(const json& j, int max_boxes) {
  const char* shape = "boxes must be [[x0,y0,x1,y1], ...] in pixels";
  if (!j.is_array() || j.empty()) throw HttpError(400, "invalid_box", std::string(shape) + ", with at least one box");
  json list = j;
  if (j[0].is_number()) list = json::array({j});
  if (static_cast<int>(list.size()) > max_boxes)
    throw HttpError(400, "too_many_boxes", std::to_string(list.size()) + " boxes given, at most " +
                                               std::to_string(max_boxes) + " per request");
  std::vector<Box> boxes;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& b = list[i];
    const std::string name = "boxes[" + std::to_string(i) + "]";
    if (!b.is_array() || b.size() != 4 ||
        !std::all_of(b.begin(), b.end(), [](const json& v) { return v.is_number(); }))
      throw HttpError(400, "invalid_box", name + " must be four numbers [x0,y0,x1,y1]; got " + io::describe_json(b));
    Box box{b[0].get<double>(), b[1].get<double>(), b[2].get<double>(), b[3].get<double>()};
    if (!(box.x1 > box.x0 && box.y1 > box.y0))
      throw HttpError(400, "invalid_box", name + " " + box.str() + " is empty or inverted: need x1 > x0 and y1 > y0");
    boxes.push_back(box);
  }
  return boxes;
}

}  // namespace

void check_boxes_in_image(const std::vector<Box>& boxes, int width, int height) {
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    const Box& b = boxes[i];
    const std::string name = "boxes[" + std::to_string(i) + "] (" + b.str() + ")";
    if (b.x0 < 0 || b.y0 < 0 || b.x1 > width || b.y1 > height)
      throw HttpError(400, "box_outside_image", name + " is outside the " + std::to_string(width) + "x" +
                                                    std::to_string(height) + " image");
    const cv::Rect r = b.pixel_rect();
    if (r.width < 2 || r.height < 2)
      throw HttpError(400, "invalid_box", name + " is smaller than 2x2 pixels: draw a larger box");
  }
}

namespace {

std::vector<std::string> outputs_from_json(const json& j) {
  if (!j.is_array() || j.empty())
    throw HttpError(400, "invalid_outputs", "outputs must be a non-empty list of alpha, cutout, composite, trimap, overlay");
  std::vector<std::string> out;
  for (const json& v : j) {
    const auto known = v.is_string() ? std::find(kAllOutputs.begin(), kAllOutputs.end(), v.get<std::string>())
                                     : kAllOutputs.end();
    if (known == kAllOutputs.end())
      throw HttpError(400, "invalid_outputs", "unknown output " + io::describe_json(v) +
                                                  ": choose from alpha, cutout, composite, trimap, overlay");
    const std::string& name = *known;
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

/// Multipart fields may hold a JSON list or a comma-separated list.
std::vector<std::string> outputs_from_text(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') return outputs_from_json(parse_json_text(text, "outputs"));
  json list = json::array();
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    item.erase(0, item.find_first_not_of(" \t\r\n"));
    item.erase(item.find_last_not_of(" \t\r\n") + 1);
    if (!item.empty()) list.push_back(item);
  }
  return outputs_from_json(list);
}

cv::Scalar background_from_text(const std::string& text) {
  if (auto c = matting::parse_color(text)) return *c;
  throw HttpError(400, "invalid_background", "background '" + io::printable_prefix(text) +
                                                 "' is not a colour: use #RRGGBB, #RGB, R,G,B or a name such as white");
}

void finish_params(MatteParams& p, bool outputs_given) {
  if (p.png) {
    if (!outputs_given) p.outputs = {"alpha"};
    if (p.outputs.size() != 1)
      throw HttpError(406, "not_acceptable", "Accept: image/png answers with one PNG: ask for exactly one output");
  } else if (!outputs_given) {
    p.outputs = kDefaultOutputs;
  }
}

}  // namespace

const std::vector<std::string>& all_outputs() { return kAllOutputs; }

MatteParams matte_params_from_form(const FormField& field, bool png, int max_boxes) {
  MatteParams p;
  p.png = png;
  const std::string* boxes = field("boxes");
  if (!boxes) throw HttpError(400, "missing_field", "the form needs a 'boxes' field: [[x0,y0,x1,y1], ...] in pixels");
  p.boxes = boxes_from_json(parse_json_text(form_text(*boxes, "boxes"), "boxes"), max_boxes);
  const std::string* outputs = field("outputs");
  if (outputs) p.outputs = outputs_from_text(form_text(*outputs, "outputs"));
  if (const std::string* background = field("background"))
    p.background = background_from_text(form_text(*background, "background"));
  finish_params(p, outputs != nullptr);
  return p;
}

MatteParams matte_params_from_json(const std::string& text, bool png, int max_boxes) {
  const json body = parse_json_text(text, "the request body");
  if (!body.is_object()) throw HttpError(400, "invalid_json", "the request body must be a JSON object with 'boxes'");
  MatteParams p;
  p.png = png;
  if (!body.contains("boxes"))
    throw HttpError(400, "missing_field", "the body needs 'boxes': [[x0,y0,x1,y1], ...] in pixels");
  p.boxes = boxes_from_json(body["boxes"], max_boxes);
  const bool outputs_given = body.contains("outputs");
  if (outputs_given) p.outputs = outputs_from_json(body["outputs"]);
  if (body.contains("background")) {
    if (!body["background"].is_string())
      throw HttpError(400, "invalid_background", "background must be a string such as \"#ffffff\"");
    p.background = background_from_text(body["background"].get<std::string>());
  }
  finish_params(p, outputs_given);
  return p;
}

}  // namespace semat::serve
