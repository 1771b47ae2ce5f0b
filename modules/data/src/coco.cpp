#include "semat/data/coco.h"

#include <climits>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "semat/core/error.h"
#include "semat/data/rle.h"
#include "semat/io/json.h"

namespace semat::data {
namespace {

using nlohmann::json;

// Field access that reports the field instead of nlohmann's generic type_error, and refuses
// values outside [lo, hi] instead of truncating them.
std::int64_t get_int(const json& j, const char* key, std::int64_t lo = INT64_MIN, std::int64_t hi = INT64_MAX) {
  const auto it = j.find(key);
  if (it == j.end()) throw DataError(std::string("missing \"") + key + "\"");
  return io::json_int(*it, lo, hi, std::string("\"") + key + "\"");
}

bool get_bbox(const json& j, Box* box) {
  const auto it = j.find("bbox");
  if (it == j.end() || !it->is_array() || it->size() != 4) return false;
  for (const json& v : *it)
    if (!v.is_number() || !std::isfinite(v.get<double>())) return false;
  const double x = (*it)[0].get<double>(), y = (*it)[1].get<double>();
  box->x0 = x;
  box->y0 = y;
  box->x1 = x + (*it)[2].get<double>();
  box->y1 = y + (*it)[3].get<double>();
  return true;
}

bool get_iscrowd(const json& j) {
  const auto it = j.find("iscrowd");
  if (it == j.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number()) return it->get<double>() != 0;
  throw DataError("\"iscrowd\" is not a number");
}

Segmentation read_segmentation(const json& j) {
  Segmentation s;
  const auto it = j.find("segmentation");
  if (it == j.end() || it->is_null()) throw DataError("missing \"segmentation\"");
  const json& seg = *it;
  if (seg.is_array()) {
    s.kind = Segmentation::Kind::kPolygons;
    if (seg.empty()) throw DataError("\"segmentation\" is an empty polygon list");
    for (const json& poly : seg) {
      if (!poly.is_array()) throw DataError("\"segmentation\" polygon is not a list of numbers");
      std::vector<double> xy;
      xy.reserve(poly.size());
      for (const json& v : poly) {
        if (!v.is_number() || !std::isfinite(v.get<double>()))
          throw DataError("\"segmentation\" polygon holds " + io::describe_json(v) + ", not a finite number");
        xy.push_back(v.get<double>());
      }
      s.polygons.push_back(std::move(xy));
    }
    return s;
  }
  if (!seg.is_object()) throw DataError("\"segmentation\" is neither polygons nor an RLE object");
  const auto size = seg.find("size");
  const auto counts = seg.find("counts");
  if (size == seg.end() || !size->is_array() || size->size() != 2)
    throw DataError("RLE \"size\" must be [height, width]");
  s.rle_height = static_cast<int>(io::json_int((*size)[0], 0, INT32_MAX, "RLE \"size\" height"));
  s.rle_width = static_cast<int>(io::json_int((*size)[1], 0, INT32_MAX, "RLE \"size\" width"));
  if (counts == seg.end()) throw DataError("RLE has no \"counts\"");
  if (counts->is_string()) {
    s.kind = Segmentation::Kind::kRleString;
    s.counts_string = counts->get<std::string>();
  } else if (counts->is_array()) {
    s.kind = Segmentation::Kind::kRleCounts;
    s.counts.reserve(counts->size());
    for (const json& c : *counts) {
      if (!c.is_number_integer() || c.get<std::int64_t>() < 0 ||
          c.get<std::int64_t>() > std::int64_t{UINT32_MAX})
        throw DataError("RLE \"counts\" holds a value that is not a non-negative integer");
      s.counts.push_back(static_cast<std::uint32_t>(c.get<std::int64_t>()));
    }
  } else {
    throw DataError("RLE \"counts\" is neither a string nor a list");
  }
  return s;
}

// An images entry in one bounded line: its id and file name when readable, else its shape.
std::string describe_entry(const json& j) {
  if (!j.is_object()) return io::describe_json(j);
  std::string out = "{";
  for (const char* key : {"id", "file_name"}) {
    const auto it = j.find(key);
    if (it != j.end()) out += std::string(out.size() > 1 ? ", " : "") + key + ": " + io::describe_json(*it);
  }
  return out + "}";
}

class Collector {
 public:
  Collector(CocoDataset& ds, const LoadOptions& o) : ds_(ds), o_(o) {}

  bool keep(std::int64_t image_id) const { return !o_.keep_image || o_.keep_image(image_id); }

  void image(const json& j) {
    CocoImage im;
    try {
      im.id = get_int(j, "id");
      if (!keep(im.id)) return;
      const auto fn = j.find("file_name");
      if (fn == j.end() || !fn->is_string()) throw DataError("missing \"file_name\"");
      im.file_name = fn->get<std::string>();
      im.width = static_cast<int>(get_int(j, "width", 1, INT32_MAX));
      im.height = static_cast<int>(get_int(j, "height", 1, INT32_MAX));
    } catch (const DataError& e) {
      ds_.image_errors.push_back("images entry " + describe_entry(j) + ": " + e.what());
      return;
    }
    // Two entries with one id would silently merge their annotations onto one file.
    SEMAT_CHECK(ds_.images.count(im.id) == 0, DataError,
                "annotations '" << ds_.source << "': image id " << im.id << " appears twice ('"
                                << ds_.images[im.id].file_name << "' and '" << im.file_name
                                << "'); ids must be unique: fix the export");
    ds_.images[im.id] = std::move(im);
  }

  void category(const json& j) {
    CocoCategory c;
    c.id = get_int(j, "id");
    const auto name = j.find("name");
    if (name == j.end() || !name->is_string())
      throw DataError("categories entry " + std::to_string(c.id) + " has no \"name\"");
    c.name = name->get<std::string>();
    const auto super = j.find("supercategory");
    if (super != j.end() && super->is_string()) c.supercategory = super->get<std::string>();
    ds_.categories[c.id] = std::move(c);
  }

  void annotation(const json& j) {
    const auto segments = j.find("segments_info");
    if (segments != j.end()) {
      ds_.panoptic = true;
      panoptic(j, *segments);
      return;
    }
    CocoAnnotation a;
    a.category_id = -1;
    try {
      a.image_id = get_int(j, "image_id");
      if (!keep(a.image_id)) return;
      a.id = get_int(j, "id");
      a.category_id = get_int(j, "category_id");
      a.iscrowd = get_iscrowd(j);
      a.has_bbox = get_bbox(j, &a.box);
      a.segmentation = read_segmentation(j);
    } catch (const DataError& e) {
      a.error = e.what();
    }
    ds_.annotations.push_back(std::move(a));
  }

 private:
  void panoptic(const json& j, const json& segments) {
    std::int64_t image_id = 0;
    std::string png, error;
    try {
      image_id = get_int(j, "image_id");
      if (!keep(image_id)) return;
      const auto fn = j.find("file_name");
      if (fn == j.end() || !fn->is_string()) throw DataError("missing \"file_name\" (segment PNG)");
      png = fn->get<std::string>();
      if (!segments.is_array()) throw DataError("\"segments_info\" is not a list");
    } catch (const DataError& e) {
      CocoAnnotation a;
      a.image_id = image_id;
      a.category_id = -1;
      a.error = e.what();
      ds_.annotations.push_back(std::move(a));
      return;
    }
    for (const json& s : segments) {
      CocoAnnotation a;
      a.image_id = image_id;
      a.category_id = -1;
      a.segmentation.kind = Segmentation::Kind::kPanoptic;
      a.segmentation.png = png;
      try {
        a.id = get_int(s, "id");
        a.category_id = get_int(s, "category_id");
        a.iscrowd = get_iscrowd(s);
        a.has_bbox = get_bbox(s, &a.box);
      } catch (const DataError& e) {
        a.error = e.what();
      }
      ds_.annotations.push_back(std::move(a));
    }
  }

  CocoDataset& ds_;
  const LoadOptions& o_;
};

template <typename Input>
CocoDataset parse_any(Input&& input, const std::string& source, const LoadOptions& options) {
  CocoDataset ds;
  ds.source = source;
  Collector collector(ds, options);
  std::string section;
  bool seen_images = false, seen_annotations = false, seen_categories = false;
  const json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    // Values are copied and described recursively later; refuse absurd nesting while parsing.
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= io::kMaxJsonDepth)
      throw DataError("annotations '" + source + "': malformed JSON: nested deeper than " +
                      std::to_string(io::kMaxJsonDepth) + " levels; the file is corrupt or not COCO");
    if (depth == 1 && event == json::parse_event_t::key) {
      section = parsed.get<std::string>();
      return true;
    }
    if (depth == 1 && event == json::parse_event_t::array_start) {
      seen_images |= section == "images";
      seen_annotations |= section == "annotations";
      seen_categories |= section == "categories";
      return true;
    }
    // Elements of the three arrays are converted and dropped (returning false discards them).
    if (depth == 2 && event == json::parse_event_t::object_end) {
      if (section == "images") {
        collector.image(parsed);
        return false;
      }
      if (section == "annotations") {
        collector.annotation(parsed);
        return false;
      }
      if (section == "categories") {
        try {
          collector.category(parsed);
        } catch (const DataError& e) {
          throw DataError("annotations '" + source + "': " + e.what() +
                          " (every category needs an integer \"id\" and a \"name\")");
        }
        return false;
      }
    }
    // Everything else below the top level (licenses, info...) is not needed.
    return depth <= 1 || section == "images" || section == "annotations" || section == "categories";
  };
  json root;
  try {
    root = json::parse(std::forward<Input>(input), cb);
  } catch (const json::parse_error& e) {
    throw DataError("annotations '" + source + "': malformed JSON at byte " +
                    std::to_string(e.byte) + " (" + e.what() +
                    "); the file is truncated or corrupt: re-download or re-export it");
  } catch (const json::exception& e) {
    // out_of_range 406: a number beyond the double range such as 1e400.
    throw DataError("annotations '" + source + "': malformed JSON (" + e.what() +
                    "); the file is truncated or corrupt: re-download or re-export it");
  }
  SEMAT_CHECK(root.is_object(), DataError,
              "annotations '" << source << "': the top level is not a JSON object; expected a "
                              << "COCO file with \"images\", \"annotations\" and \"categories\"");
  for (auto [seen, key] : {std::pair{seen_images, "images"},
                           {seen_annotations, "annotations"},
                           {seen_categories, "categories"}})
    SEMAT_CHECK(seen, DataError,
                "annotations '" << source << "': \"" << key
                                << "\" is missing or not a list; is this a COCO instances or "
                                   "panoptic file?");
  return ds;
}

}  // namespace

std::int64_t CocoDataset::category_id(const std::string& name) const {
  for (const auto& [id, c] : categories)
    if (c.name == name) return id;
  return -1;
}

CocoDataset load_coco(const std::string& path, const LoadOptions& options) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  SEMAT_CHECK(f != nullptr, IoError,
              "cannot open annotations '" << path << "' (check the --annotations path)");
  return parse_any(f.get(), path, options);
}

CocoDataset parse_coco(const std::string& text, const std::string& source,
                       const LoadOptions& options) {
  return parse_any(text, source, options);
}

cv::Mat panoptic_ids(const cv::Mat& png) {
  SEMAT_CHECK(png.type() == CV_8UC3, DataError,
              "panoptic PNG must be 8-bit RGB (segment id = R + 256 G + 65536 B)");
  cv::Mat ids(png.size(), CV_32S);
  for (int y = 0; y < png.rows; ++y) {
    const cv::Vec3b* in = png.ptr<cv::Vec3b>(y);
    std::int32_t* out = ids.ptr<std::int32_t>(y);
    for (int x = 0; x < png.cols; ++x)  // OpenCV order is B, G, R
      out[x] = in[x][2] + 256 * in[x][1] + 65536 * in[x][0];
  }
  return ids;
}

cv::Mat decode_mask(const CocoAnnotation& ann, const CocoImage& image, const cv::Mat& panoptic) {
  const Segmentation& s = ann.segmentation;
  auto check_size = [&] {
    SEMAT_CHECK(s.rle_height == image.height && s.rle_width == image.width, DataError,
                "RLE size [" << s.rle_height << ", " << s.rle_width
                             << "] differs from the image's [" << image.height << ", "
                             << image.width << "]");
  };
  switch (s.kind) {
    case Segmentation::Kind::kPolygons:
      return polygons_to_mask(s.polygons, image.height, image.width);
    case Segmentation::Kind::kRleCounts: {
      check_size();
      Rle r{s.rle_height, s.rle_width, s.counts};
      return rle_to_mask(r);
    }
    case Segmentation::Kind::kRleString:
      check_size();
      return rle_to_mask(rle_from_string(s.counts_string, s.rle_height, s.rle_width));
    case Segmentation::Kind::kPanoptic:
      SEMAT_CHECK(panoptic.type() == CV_32S && panoptic.rows == image.height &&
                      panoptic.cols == image.width,
                  DataError,
                  "panoptic PNG '" << s.png << "' is " << panoptic.cols << "x" << panoptic.rows
                                   << " but the image is " << image.width << "x" << image.height);
      return panoptic == static_cast<double>(ann.id);
    case Segmentation::Kind::kNone:
      break;
  }
  throw DataError("annotation has no segmentation");
}

}  // namespace semat::data
