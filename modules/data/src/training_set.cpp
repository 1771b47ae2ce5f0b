// TrainingSet: scanning the dataset folders up front and drawing samples by (seed, index).
#include "semat/data/training_set.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>

#include <opencv2/core.hpp>

#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/data/index.h"
#include "semat/io/image_io.h"
#include "training_internal.h"

namespace semat::data {

namespace fs = std::filesystem;

namespace {

const char* const kCoco = "coco-matting";
const char* const kConcat = "coco-matting-concat";
const char* const kComposition = "composition";

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool has_ext(const fs::path& p, const std::vector<std::string>& exts) {
  const std::string e = lower(p.extension().string());
  return std::find(exts.begin(), exts.end(), e) != exts.end();
}

const std::vector<std::string> kImageExts = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"};
const std::vector<std::string> kConcatExts = {".png", ".jpg", ".jpeg"};

// Image files in `dir` (sorted, so item numbers do not depend on the file system's order).
// Hidden files (macOS "._x.png" and the like) are not images.
std::vector<fs::path> list_images(const fs::path& dir, bool recursive, const std::vector<std::string>& exts) {
  std::vector<fs::path> out;
  std::error_code ec;
  auto visit = [&](const fs::directory_entry& e) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.' && has_ext(e.path(), exts) && e.is_regular_file(ec))
      out.push_back(e.path());
  };
  if (recursive) {
    fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
    for (; !ec && it != end; it.increment(ec)) visit(*it);
  } else {
    fs::directory_iterator it(dir, ec), end;
    for (; !ec && it != end; it.increment(ec)) visit(*it);
  }
  SEMAT_CHECK(!ec, IoError, "cannot list folder '" << dir.string() << "': " << ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

int read_be16(std::istream& in) {
  const int a = in.get(), b = in.get();
  return (a << 8) | b;
}

// Width and height from a PNG or JPEG header, without decoding the pixels (a scan of tens of
// thousands of concatenated files must stay quick).
bool image_size(const std::string& path, int* w, int* h) {
  std::ifstream in(path, std::ios::binary);
  unsigned char sig[8] = {};
  if (!in.read(reinterpret_cast<char*>(sig), 8)) return false;
  static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (std::equal(sig, sig + 8, png)) {
    unsigned char ihdr[16] = {};
    if (!in.read(reinterpret_cast<char*>(ihdr), 16) || std::string(ihdr + 4, ihdr + 8) != "IHDR") return false;
    auto be32 = [](const unsigned char* p) {
      return static_cast<int>((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]);
    };
    *w = be32(ihdr + 8), *h = be32(ihdr + 12);
    return *w > 0 && *h > 0;
  }
  if (sig[0] != 0xff || sig[1] != 0xd8) return false;
  in.seekg(2);
  for (;;) {
    int c = in.get();
    if (c != 0xff) return false;
    while (c == 0xff) c = in.get();
    if (c == EOF) return false;
    if (c == 0x01 || (c >= 0xd0 && c <= 0xd8)) continue;  // markers without a length
    if (c == 0xd9 || c == 0xda) return false;              // end of image / scan before a frame
    const int len = read_be16(in);
    if (!in || len < 2) return false;
    if (c >= 0xc0 && c <= 0xcf && c != 0xc4 && c != 0xc8 && c != 0xcc) {  // start of frame
      in.get();  // precision
      *h = read_be16(in);
      *w = read_be16(in);
      return in.good() && *w > 0 && *h > 0;
    }
    in.seekg(len - 2, std::ios::cur);
  }
}

// The official SplitConcatImage rule, on the file's whole path as the official loader sees it.
int official_panels(const std::string& path) {
  if (path.find("06-14") != std::string::npos) return 4;
  if (path.find("ori_mask") != std::string::npos || path.find("SEMat") != std::string::npos) return 3;
  return 5;
}

// Channel 0 of the file read as 3-channel BGR, exactly what cv2.imread(path)[:, :, 0] gives the
// official loaders (identical to the grey level for grey files).
cv::Mat read_channel0(const std::string& path) {
  const cv::Mat bgr = io::read_color(path);
  cv::Mat c0;
  cv::extractChannel(bgr, c0, 0);
  return c0;
}

void check_same_size(const cv::Mat& a, const std::string& a_path, const cv::Mat& b, const std::string& b_path) {
  SEMAT_CHECK(a.size() == b.size(), DataError,
              "'" << b_path << "' is " << b.cols << "x" << b.rows << " but '" << a_path << "' is " << a.cols
                  << "x" << a.rows << ": an image and its alpha/trimap must have the same size");
}

}  // namespace

struct TrainingSet::Impl {
  struct Item {
    std::string image, alpha, trimap;  ///< composition: image = foreground; concat: image only
    std::string stem;
    int panels = 0;  ///< concat only
  };
  struct Dataset {
    std::string name;
    std::vector<Item> items;
    std::vector<std::string> bg;  ///< composition background pool
  };

  std::vector<DatasetSpec> specs;
  std::vector<Dataset> sets;
  std::vector<double> cumulative;  ///< running sums of the weights
  AugmentConfig aug;
  uint64_t seed = 0;

  std::pair<size_t, size_t> choose(detail::Rng& rng) const {
    const double u = rng.uniform() * cumulative.back();
    size_t d = static_cast<size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin());
    if (d >= sets.size()) {  // rounding at the very top: the last dataset with a weight
      d = sets.size() - 1;
      while (d > 0 && specs[d].weight <= 0) --d;
    }
    const auto i = static_cast<size_t>(rng.integer(0, static_cast<int64_t>(sets[d].items.size()) - 1));
    return {d, i};
  }

  static std::string where(size_t i, const DatasetSpec& s, const std::string& name) {
    return "dataset " + std::to_string(i) + " ('" + name + "', " + s.type + ")";
  }

  static fs::path folder(const std::string& w, const std::string& value, const char* field, const char* what) {
    SEMAT_CHECK(!value.empty(), ConfigError,
                w << ": \"" << field << "\" is required: set it to " << what);
    std::error_code ec;
    SEMAT_CHECK(fs::is_directory(value, ec), IoError,
                w << ": folder '" << value << "' (\"" << field << "\") does not exist or is not a folder");
    return fs::path(value);
  }

  void scan_coco(const std::string& w, const DatasetSpec& s, Dataset& ds) {
    const fs::path root = folder(w, s.root, "root", "the semat build-dataset --out folder");
    const fs::path images = folder(w, s.images, "images", "the image folder build-dataset read (--images)");
    std::vector<fs::path> files;
    std::error_code ec;
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string n = it->path().filename().string();
      if (n.size() >= 11 && n.compare(0, 5, "index") == 0 && n.compare(n.size() - 6, 6, ".jsonl") == 0)
        files.push_back(it->path());
    }
    SEMAT_CHECK(!ec, IoError, w << ": cannot list folder '" << root.string() << "': " << ec.message());
    std::sort(files.begin(), files.end());
    SEMAT_CHECK(!files.empty(), DataError,
                w << ": folder '" << root.string()
                  << "' holds no index*.jsonl: is it a semat build-dataset --out folder?");
    // Last line of an instance wins (over files in name order too), as in merge-index.
    std::map<std::pair<int64_t, int64_t>, std::pair<IndexRecord, std::string>> records;
    size_t lines = 0;
    for (const fs::path& f : files) {
      JournalContents jc = read_journal(f.string(), /*repair=*/false);
      if (jc.torn_bytes > 0 || jc.corrupt_lines > 0)
        SEMAT_LOG_WARN("data", f.string() << ": ignored a torn or unreadable line (is a build still "
                                             "writing it? rerun it to finish and repair)");
      for (const auto& j : jc.lines) {
        IndexRecord r = IndexRecord::from_json(j, f.string());
        records[{r.image_id, r.ann_id}] = {std::move(r), f.string()};
        ++lines;
      }
    }
    for (const auto& [key, rf] : records) {
      const IndexRecord& r = rf.first;
      if (r.score < s.min_score) continue;
      Item it;
      it.image = (images / r.image).string();
      it.alpha = (root / r.alpha).string();
      it.trimap = (root / r.trimap).string();
      it.stem = instance_stem(r.image_id, r.ann_id);
      auto check = [&](const std::string& path, const char* what, const char* fix) {
        SEMAT_CHECK(fs::exists(path, ec), DataError,
                    w << ": record " << it.stem << " of '" << rf.second << "' names a missing " << what
                      << " file '" << path << "' (" << fix << ")");
      };
      check(it.alpha, "alpha", "rerun semat build-dataset on it to rebuild, or semat merge-index --verify");
      check(it.trimap, "trimap", "rerun semat build-dataset on it to rebuild, or semat merge-index --verify");
      check(it.image, "image", "is \"images\" the folder semat build-dataset read?");
      ds.items.push_back(std::move(it));
    }
    SEMAT_CHECK(!ds.items.empty(), DataError,
                w << ": folder '" << root.string() << "' has no usable record (" << lines
                  << " index lines, none with score >= min_score " << s.min_score << ")");
  }

  void scan_concat(const std::string& w, const DatasetSpec& s, Dataset& ds) {
    SEMAT_CHECK(s.panels == 0 || s.panels >= 3, ConfigError,
                w << ": \"panels\" is " << s.panels << ": use 0 (the official rule from the path) or 3, 4, 5");
    const fs::path root = folder(w, s.root, "root", "the folder of concatenated COCO-Matting files");
    const std::vector<fs::path> files = list_images(root, /*recursive=*/true, kConcatExts);
    SEMAT_CHECK(!files.empty(), DataError,
                w << ": folder '" << root.string() << "' holds no .png/.jpg file (searched recursively)");
    ds.items.reserve(files.size());
    for (const fs::path& f : files) {
      Item it;
      it.image = f.string();
      it.stem = f.stem().string();
      it.panels = s.panels > 0 ? s.panels : official_panels(it.image);
      int width = 0, height = 0;
      SEMAT_CHECK(image_size(it.image, &width, &height), IoError,
                  w << ": '" << it.image << "' is not a readable PNG or JPEG (its header gives no size): "
                    << "remove it or replace it");
      SEMAT_CHECK(width % it.panels == 0, DataError,
                  w << ": '" << it.image << "' is " << width << " px wide, not divisible into " << it.panels
                    << " panels" << (s.panels > 0 ? " (\"panels\")" : " (the official rule from its path)")
                    << ": set \"panels\" to its layout or remove the file");
      ds.items.push_back(std::move(it));
    }
  }

  void scan_composition(const std::string& w, const DatasetSpec& s, Dataset& ds) {
    const fs::path fg = folder(w, s.fg, "fg", "the foreground folder");
    const fs::path alpha = folder(w, s.alpha, "alpha", "the alpha folder (files named as the foregrounds)");
    const fs::path bg = folder(w, s.bg, "bg", "a folder of background images");
    auto by_stem = [&](const fs::path& dir) {
      std::map<std::string, std::string> m;
      for (const fs::path& p : list_images(dir, /*recursive=*/false, kImageExts)) {
        auto [at, fresh] = m.emplace(p.stem().string(), p.string());
        SEMAT_CHECK(fresh, DataError,
                    w << ": '" << at->second << "' and '" << p.string()
                      << "' have the same file stem: keep one of them");
      }
      return m;
    };
    const std::map<std::string, std::string> fgs = by_stem(fg), alphas = by_stem(alpha);
    SEMAT_CHECK(!fgs.empty(), DataError, w << ": folder '" << fg.string() << "' (\"fg\") holds no image");
    for (const auto& [stem, path] : fgs)
      SEMAT_CHECK(alphas.count(stem), DataError,
                  w << ": foreground '" << path << "' has no alpha named '" << stem << ".*' in '"
                    << alpha.string() << "': add it or remove the foreground");
    for (const auto& [stem, path] : alphas)
      SEMAT_CHECK(fgs.count(stem), DataError,
                  w << ": alpha '" << path << "' has no foreground named '" << stem << ".*' in '"
                    << fg.string() << "': add it or remove the alpha");
    for (const auto& [stem, path] : fgs) {
      Item it;
      it.image = path;
      it.alpha = alphas.at(stem);
      it.stem = stem;
      ds.items.push_back(std::move(it));
    }
    for (const fs::path& p : list_images(bg, /*recursive=*/true, kImageExts)) ds.bg.push_back(p.string());
    SEMAT_CHECK(!ds.bg.empty(), DataError,
                w << ": folder '" << bg.string() << "' (\"bg\") holds no image (searched recursively)");
  }
};

TrainingSet::TrainingSet(std::vector<DatasetSpec> specs, AugmentConfig aug, uint64_t seed)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.specs = std::move(specs);
  m.aug = aug;
  m.seed = seed;
  SEMAT_CHECK(!m.specs.empty(), ConfigError, "training datasets: the list is empty: give at least one dataset");
  SEMAT_CHECK(aug.size >= 1 && aug.size <= 16384, ConfigError,
              "augment: size " << aug.size << " is out of range: use the network's input size, e.g. 1024");
  SEMAT_CHECK(std::isfinite(aug.box_jitter) && aug.box_jitter >= 0, ConfigError,
              "augment: box_jitter " << aug.box_jitter << " must be >= 0 (e.g. 0.1)");
  SEMAT_CHECK(std::isfinite(aug.scale_min) && std::isfinite(aug.scale_max) && aug.scale_min > 0 &&
                  aug.scale_max >= aug.scale_min,
              ConfigError,
              "augment: scale_min/scale_max " << aug.scale_min << "/" << aug.scale_max
                                              << " must satisfy 0 < scale_min <= scale_max (e.g. 0.5/1.5)");
  SEMAT_CHECK(aug.two_fg_prob >= 0 && aug.two_fg_prob <= 1, ConfigError,
              "augment: two_fg_prob " << aug.two_fg_prob << " must be in [0, 1]");
  SEMAT_CHECK(aug.square_resize_prob >= 0 && aug.square_resize_prob <= 1 && aug.square_side >= 16, ConfigError,
              "augment: square_resize_prob " << aug.square_resize_prob << " must be in [0, 1] and square_side "
                                             << aug.square_side << " at least 16");
  SEMAT_CHECK(aug.trimap_min_kernel >= 1 && aug.trimap_max_kernel >= aug.trimap_min_kernel &&
                  aug.trimap_max_kernel <= 1000,
              ConfigError,
              "augment: trimap_min_kernel/trimap_max_kernel " << aug.trimap_min_kernel << "/"
                  << aug.trimap_max_kernel << " must satisfy 1 <= min <= max (e.g. 1/29)");
  double total = 0;
  for (size_t i = 0; i < m.specs.size(); ++i) {
    const DatasetSpec& s = m.specs[i];
    const std::string name = s.name.empty() ? s.type : s.name;
    const std::string w = Impl::where(i, s, name);
    SEMAT_CHECK(s.type == kCoco || s.type == kConcat || s.type == kComposition, ConfigError,
                "dataset " << i << " ('" << name << "'): unknown type '" << s.type
                           << "': use coco-matting, coco-matting-concat or composition");
    SEMAT_CHECK(std::isfinite(s.weight) && s.weight >= 0, ConfigError,
                w << ": weight " << s.weight << " must be a number >= 0");
    total += s.weight;
    m.cumulative.push_back(total);
  }
  SEMAT_CHECK(total > 0, ConfigError, "training datasets: every weight is 0: give at least one a positive weight");
  for (size_t i = 0; i < m.specs.size(); ++i) {
    const DatasetSpec& s = m.specs[i];
    Impl::Dataset ds;
    ds.name = s.name.empty() ? s.type : s.name;
    const std::string w = Impl::where(i, s, ds.name);
    if (s.type == kCoco) m.scan_coco(w, s, ds);
    else if (s.type == kConcat) m.scan_concat(w, s, ds);
    else m.scan_composition(w, s, ds);
    SEMAT_LOG_INFO("data", ds.name << ": " << ds.items.size() << " samples"
                                   << (ds.bg.empty() ? "" : ", " + std::to_string(ds.bg.size()) + " backgrounds")
                                   << ", weight " << s.weight / total);
    m.sets.push_back(std::move(ds));
  }
}

TrainingSet::~TrainingSet() = default;
TrainingSet::TrainingSet(TrainingSet&&) noexcept = default;
TrainingSet& TrainingSet::operator=(TrainingSet&&) noexcept = default;

std::pair<size_t, size_t> TrainingSet::pick(int64_t index) const {
  detail::Rng rng(impl_->seed, index);
  return impl_->choose(rng);
}

size_t TrainingSet::dataset_count() const { return impl_->sets.size(); }
const DatasetSpec& TrainingSet::spec(size_t i) const { return impl_->specs.at(i); }
size_t TrainingSet::dataset_size(size_t i) const { return impl_->sets.at(i).items.size(); }
const AugmentConfig& TrainingSet::augment() const { return impl_->aug; }

TrainingSample TrainingSet::get(int64_t index) const {
  const Impl& m = *impl_;
  detail::Rng rng(m.seed, index);
  const auto [d, i] = m.choose(rng);
  const DatasetSpec& spec = m.specs[d];
  const Impl::Dataset& ds = m.sets[d];
  const Impl::Item& it = ds.items[i];
  const std::string source = ds.name + ":" + it.stem;
  TrainingSample out;
  try {
    if (spec.type == kCoco) {
      const cv::Mat image = io::read_color(it.image);
      const cv::Mat alpha = read_channel0(it.alpha);
      cv::Mat trimap = read_channel0(it.trimap);
      check_same_size(image, it.image, alpha, it.alpha);
      check_same_size(image, it.image, trimap, it.trimap);
      detail::canonical_trimap(trimap);
      out = detail::augment_matting(image, alpha, trimap, m.aug, rng);
    } else if (spec.type == kConcat) {
      const cv::Mat all = io::read_color(it.image);
      const int n = it.panels;
      SEMAT_CHECK(all.cols % n == 0, DataError,
                  "'" << it.image << "' is " << all.cols << " px wide, not divisible into " << n << " panels");
      const int pw = all.cols / n;
      auto panel = [&](int k) { return all(cv::Rect(k * pw, 0, pw, all.rows)); };
      cv::Mat alpha, trimap;
      cv::extractChannel(panel(n == 3 ? 1 : n - 1), alpha, 0);
      cv::extractChannel(panel(n == 3 ? 2 : n - 2), trimap, 0);
      detail::canonical_trimap(trimap);
      out = detail::augment_matting(panel(0), alpha, trimap, m.aug, rng);
    } else {
      cv::Mat fg = io::read_color(it.image);
      cv::Mat alpha = read_channel0(it.alpha);
      check_same_size(fg, it.image, alpha, it.alpha);
      if (rng.chance(m.aug.two_fg_prob)) {
        const Impl::Item& other = ds.items[static_cast<size_t>(rng.integer(0, static_cast<int64_t>(ds.items.size()) - 1))];
        const cv::Mat fg2 = io::read_color(other.image);
        const cv::Mat alpha2 = read_channel0(other.alpha);
        check_same_size(fg2, other.image, alpha2, other.alpha);
        detail::merge_foregrounds(fg, alpha, fg2, alpha2);
      }
      if (rng.chance(m.aug.square_resize_prob))
        detail::square_resize(fg, alpha, static_cast<int>(m.aug.square_side), rng);
      const cv::Mat bg = io::read_color(ds.bg[static_cast<size_t>(rng.integer(0, static_cast<int64_t>(ds.bg.size()) - 1))]);
      out = detail::augment_composition(fg, alpha, bg, m.aug, rng);
    }
  } catch (const Error& e) {
    throw DataError(source + ": " + e.what());
  } catch (const cv::Exception& e) {
    throw DataError(source + " ('" + it.image + "'): OpenCV failed on it: " + e.msg);
  }
  out.source = source;
  return out;
}

}  // namespace semat::data
