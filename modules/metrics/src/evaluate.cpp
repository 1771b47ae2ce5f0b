#include "semat/metrics/evaluate.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <exception>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include <opencv2/core.hpp>

#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/io/image_io.h"

namespace fs = std::filesystem;

namespace semat::metrics {
namespace {

bool is_image_ext(std::string ext) {
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::set<std::string> known = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"};
  return known.count(ext) > 0;
}

// "a, b, c (and 7 more)": enough names to act on without flooding one error line.
std::string name_list(const std::vector<std::string>& names) {
  std::ostringstream os;
  const size_t shown = std::min<size_t>(names.size(), 10);
  for (size_t i = 0; i < shown; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > shown) os << " (and " << names.size() - shown << " more)";
  return os.str();
}

std::string base_name(const std::string& key) {
  const size_t slash = key.rfind('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
}

// Files of `dir` keyed like the items: the stem, plus "sub/stem" for one level of subfolders when
// the items use such keys (SIM).
std::map<std::string, std::string> index_folder(const std::string& dir, const std::string& flag,
                                                bool with_subfolders) {
  std::map<std::string, std::string> files = list_images(dir, flag);
  if (!with_subfolders) return files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory(ec)) continue;
    const std::string sub = entry.path().filename().string();
    for (const auto& [stem, path] : list_images(entry.path().string(), flag))
      files.emplace(sub + "/" + stem, path);
  }
  return files;
}

// Finds the file for `key`: the exact key, else its last component when that is unambiguous.
const std::string* lookup(const std::map<std::string, std::string>& files, const std::string& key,
                          const std::map<std::string, int>& base_counts, std::set<std::string>& used) {
  auto it = files.find(key);
  if (it == files.end() && key.find('/') != std::string::npos && base_counts.at(base_name(key)) == 1)
    it = files.find(base_name(key));
  if (it == files.end()) return nullptr;
  used.insert(it->first);
  return &it->second;
}

}  // namespace

cv::Mat read_alpha(const std::string& path) {
  const cv::Mat unit = io::read_unit_gray(path);
  // read_unit_gray hands back float32 k/255 or k/65535. Recover the exact value in double: an
  // 8-bit level is within float rounding of k/255, while a 16-bit level that is not a multiple
  // of 257 (those *are* k/255) lies at least 1/257 of a step away from every k/255.
  cv::Mat out(unit.size(), CV_64FC1);
  for (int y = 0; y < unit.rows; ++y) {
    const float* u = unit.ptr<float>(y);
    double* o = out.ptr<double>(y);
    for (int x = 0; x < unit.cols; ++x) {
      const double v8 = static_cast<double>(u[x]) * 255.0;
      const double r8 = std::round(v8);
      o[x] = std::abs(v8 - r8) < 1e-3 ? r8 / 255.0 : std::round(static_cast<double>(u[x]) * 65535.0) / 65535.0;
    }
  }
  return out;
}

std::map<std::string, std::string> list_images(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  SEMAT_CHECK(fs::exists(dir, ec), IoError, flag << " folder '" << dir << "' does not exist");
  SEMAT_CHECK(fs::is_directory(dir, ec), IoError, flag << " '" << dir << "' is a file, expected a folder");
  std::map<std::string, std::string> files;
  fs::directory_iterator it(dir, ec), end;
  SEMAT_CHECK(!ec, IoError, "cannot list " << flag << " folder '" << dir << "': " << ec.message());
  for (; it != end; it.increment(ec)) {
    const fs::directory_entry& e = *it;
    if (!e.is_regular_file(ec) || !is_image_ext(e.path().extension().string())) continue;
    const std::string stem = e.path().stem().string();
    auto [pos, inserted] = files.emplace(stem, e.path().string());
    SEMAT_CHECK(inserted, DataError,
                flag << " folder '" << dir << "' has two images named '" << stem << "' ('"
                     << fs::path(pos->second).filename().string() << "' and '"
                     << e.path().filename().string() << "'): keep one");
  }
  return files;
}

std::vector<GtItem> gt_items_from_dir(const std::string& dir, const std::string& flag) {
  std::vector<GtItem> items;
  for (const auto& [stem, path] : list_images(dir, flag)) items.push_back({stem, path});
  SEMAT_CHECK(!items.empty(), DataError,
              flag << " folder '" << dir << "' holds no images (png, jpg, jpeg, bmp, tif, tiff, webp)");
  return items;
}

void parallel_for_each(int n, int threads, const std::function<void(int)>& fn) {
  if (n <= 0) return;
  int workers = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  workers = std::clamp(workers, 1, n);
  std::vector<std::exception_ptr> errors(n);
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (int i; !failed && (i = next++) < n;) {
      try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < workers; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

EvalReport evaluate(const std::vector<GtItem>& items, const EvalOptions& opt) {
  SEMAT_CHECK(!items.empty(), DataError, "no ground-truth images to evaluate");
  const bool dim = opt.protocol == Protocol::kDim;
  SEMAT_CHECK(!dim || !opt.trimap_dir.empty(), ConfigError,
              "--protocol dim evaluates the trimap's unknown region: give --trimap DIR");
  SEMAT_CHECK(dim || opt.trimap_dir.empty(), ConfigError,
              "--trimap is only used by --protocol dim (semat evaluates the whole image): drop it "
              "or add --protocol dim");

  bool nested = false;
  std::map<std::string, int> base_counts;
  for (const GtItem& it : items) {
    nested |= it.name.find('/') != std::string::npos;
    ++base_counts[base_name(it.name)];
  }
  const auto preds = index_folder(opt.pred_dir, "--pred", nested);
  std::map<std::string, std::string> trimaps;
  if (dim) trimaps = index_folder(opt.trimap_dir, "--trimap", nested);

  EvalReport report;
  report.protocol = opt.protocol;
  std::set<std::string> used_preds, used_trimaps;
  for (const GtItem& it : items) {
    const std::string* pred = lookup(preds, it.name, base_counts, used_preds);
    const std::string* tri = dim ? lookup(trimaps, it.name, base_counts, used_trimaps) : nullptr;
    if (!pred) {
      report.missing_predictions.push_back(it.name);
      continue;
    }
    if (dim && !tri) {
      report.missing_trimaps.push_back(it.name);
      continue;
    }
    report.images.push_back({it.name, *pred, it.path, tri ? *tri : std::string(), Scores()});
  }
  for (const auto& [key, path] : preds)
    if (!used_preds.count(key)) report.unmatched_predictions.push_back(key);

  if (!opt.allow_missing) {
    SEMAT_CHECK(report.missing_predictions.empty(), DataError,
                report.missing_predictions.size()
                    << " ground-truth image(s) have no prediction in '" << opt.pred_dir
                    << "': " << name_list(report.missing_predictions)
                    << "; add them or pass --allow-missing to skip them");
    SEMAT_CHECK(report.missing_trimaps.empty(), DataError,
                report.missing_trimaps.size() << " ground-truth image(s) have no trimap in '" << opt.trimap_dir
                                              << "': " << name_list(report.missing_trimaps)
                                              << "; add them or pass --allow-missing to skip them");
    SEMAT_CHECK(report.unmatched_predictions.empty(), DataError,
                report.unmatched_predictions.size()
                    << " prediction(s) in '" << opt.pred_dir << "' have no ground truth: "
                    << name_list(report.unmatched_predictions)
                    << "; check the names or pass --allow-missing to ignore them");
  }
  SEMAT_CHECK(!report.images.empty(), DataError,
              "none of the " << items.size() << " ground-truth images has a prediction in '" << opt.pred_dir
                             << "' (names are matched by file stem)");

  parallel_for_each(static_cast<int>(report.images.size()), opt.threads, [&](int i) {
    ImageResult& r = report.images[i];
    const cv::Mat gt = read_alpha(r.gt);
    const cv::Mat pred = read_alpha(r.pred);
    if (dim) {
      SEMAT_CHECK(pred.size() == gt.size(), DataError,
                  "prediction '" << r.pred << "' is " << pred.cols << "x" << pred.rows << " but ground truth '"
                                 << r.gt << "' is " << gt.cols << "x" << gt.rows
                                 << ": protocol dim compares at the original size (or use --protocol semat)");
      const cv::Mat tri = io::read_gray8(r.trimap);
      SEMAT_CHECK(tri.size() == gt.size(), DataError,
                  "trimap '" << r.trimap << "' is " << tri.cols << "x" << tri.rows << " but ground truth '"
                             << r.gt << "' is " << gt.cols << "x" << gt.rows << ": they must have the same size");
      r.scores = score_dim(pred, gt, tri, r.trimap);
    } else {
      const cv::Size want = semat_eval_size(gt.size());
      const double ar_gt = static_cast<double>(gt.cols) / gt.rows;
      const double ar_pred = static_cast<double>(pred.cols) / pred.rows;
      if (pred.size() != gt.size() && pred.size() != want && std::abs(ar_pred / ar_gt - 1.0) > 0.01)
        SEMAT_LOG_WARN("eval", "prediction '" << r.pred << "' (" << pred.cols << "x" << pred.rows
                                              << ") has another aspect ratio than ground truth '" << r.gt
                                              << "' (" << gt.cols << "x" << gt.rows << "); resizing it anyway");
      r.scores = score_semat(pred, gt);
    }
  });

  Scores& m = report.mean;
  for (const ImageResult& r : report.images) {
    m.sad += r.scores.sad;
    m.mse += r.scores.mse;
    m.mad += r.scores.mad;
    m.grad += r.scores.grad;
    m.conn += r.scores.conn;
  }
  const double n = static_cast<double>(report.images.size());
  m = {m.sad / n, m.mse / n, m.mad / n, m.grad / n, m.conn / n};
  return report;
}

}  // namespace semat::metrics
