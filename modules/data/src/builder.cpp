#include "semat/data/builder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <new>
#include <regex>
#include <set>
#include <thread>
#include <unordered_map>

#include "progress.h"
#include "semat/core/error.h"
#include "semat/core/hash.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"
#include "semat/data/coco.h"
#include "semat/data/index.h"
#include "semat/engine/engine.h"
#include "semat/io/files.h"
#include "semat/io/image_io.h"
#include "semat/matting/trimap.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace semat::data {

// ---------------------------------------------------------------------------------------------
// Shards

namespace {

// splitmix64: consecutive COCO ids spread evenly over shards, and the assignment depends on the
// id alone, so every machine computes the same partition without coordination.
}  // namespace

bool Shard::contains(std::int64_t image_id) const {
  return count <= 1 || static_cast<int>(splitmix64(static_cast<std::uint64_t>(image_id)) %
                                        static_cast<std::uint64_t>(count)) == index;
}

std::string Shard::suffix() const {
  return count <= 1 ? std::string() : "-" + std::to_string(index) + "-of-" + std::to_string(count);
}

Shard parse_shard(const std::string& text) {
  static const std::regex re(R"(^\s*(\d{1,6})\s*/\s*(\d{1,6})\s*$)");
  std::smatch m;
  SEMAT_CHECK(std::regex_match(text, m, re), ConfigError,
              "--shard '" << text << "' must be K/N with 0 <= K < N, e.g. 0/8 (K is 0-based)");
  Shard s{std::stoi(m[1]), std::stoi(m[2])};
  SEMAT_CHECK(s.count >= 1 && s.index < s.count, ConfigError,
              "--shard '" << text << "': K must be in 0.." << (s.count - 1)
                          << " (0-based; with Slurm use $SLURM_ARRAY_TASK_ID and --array=0-"
                          << (s.count - 1) << ")");
  return s;
}

// ---------------------------------------------------------------------------------------------
// Builder

namespace {

// The reason recorded for one item that failed with any exception: a semat::Error says what is
// wrong; anything else (std::bad_alloc from a crafted annotation, a cv::Exception from a codec) is
// named by its kind, so that one bad item is skipped instead of ending the whole run.
std::string item_error(const std::exception& e) {
  if (dynamic_cast<const Error*>(&e)) return e.what();
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "out of memory while processing this item";
  return std::string("internal error: ") + e.what();
}

const char* kConcatDir = "SEMat_concat";  // 'SEMat' in the path makes the official loader read
                                          // 3 panels: image | alpha | trimap

using Key = std::pair<std::int64_t, std::int64_t>;  // image id, annotation id

struct ImageWork {
  const CocoImage* image = nullptr;
  std::vector<const CocoAnnotation*> persons;      ///< to build (after --limit)
  std::vector<const CocoAnnotation*> competitors;  ///< every usable person: fusion rivals
  std::vector<const CocoAnnotation*> accessories;
};

class Counters {
 public:
  void add(const std::string& reason, std::int64_t n = 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    counts_[reason] += n;
  }
  std::map<std::string, std::int64_t> snapshot() {
    std::lock_guard<std::mutex> lock(mutex_);
    return counts_;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::int64_t> counts_;
};

// Holds an exclusive flock on a file in the output folder for the life of the run: two runs of
// the same shard appending to one index would duplicate work and interleave journals.
class RunLock {
 public:
  explicit RunLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    SEMAT_CHECK(fd_ >= 0, IoError,
                "cannot create lock file '" << path << "': " << std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw ConfigError("another build-dataset run is using '" + path +
                        "' (same --out and --shard); wait for it or choose another --out");
    }
  }
  ~RunLock() { ::close(fd_); }  // closing releases the lock

 private:
  int fd_ = -1;
};

// OpenCV's own thread pool would oversubscribe the cores the workers already use.
class CvThreadsScope {
 public:
  explicit CvThreadsScope(int threads) : saved_(cv::getNumThreads()) { cv::setNumThreads(threads); }
  ~CvThreadsScope() { cv::setNumThreads(saved_); }

 private:
  int saved_;
};

// Removes temp files (".<name>.png.tmp...") left by a killed run of this shard. Files of other
// shards sharing the folder may still be in flight, so only this shard's images are touched.
int remove_stale_temps(const std::string& dir, const Shard& shard) {
  static const std::regex re(R"(^\.(-?\d+)_(-?\d+)\.png\.tmp.*$)");
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, re)) continue;
    if (!shard.contains(std::stoll(m[1]))) continue;
    if (fs::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

double mask_iou_percent(const cv::Mat& alpha, const cv::Mat& mask) {
  const cv::Mat a = alpha > 0.5, m = mask > 0;
  cv::Mat inter, uni;
  cv::bitwise_and(a, m, inter);
  cv::bitwise_or(a, m, uni);
  const int u = cv::countNonZero(uni);
  return u > 0 ? 100.0 * cv::countNonZero(inter) / u : 0.0;
}

cv::Mat alpha_to_u8(const cv::Mat& alpha) {
  cv::Mat a8;
  alpha.convertTo(a8, CV_8U, 255.0);  // saturating, rounds to nearest
  return a8;
}

class Builder {
 public:
  Builder(const BuildOptions& o, const engine::EngineSpec& spec) : o_(o), spec_(spec) {}

  json run();

 private:
  void check_options();
  void prepare_output();
  void load_annotations();
  void plan();
  void load_done();
  void worker(std::atomic<size_t>& next);
  void process(const ImageWork& w);
  void skip_persons(const std::vector<const CocoAnnotation*>& persons, const std::string& reason,
                    const std::string& why, const CocoImage& image);
  bool in_done(const Key& k) const { return done_.count(k) > 0; }
  std::string path_in_out(const std::string& rel) const {
    return (fs::path(o_.out) / rel).string();
  }
  json summary(double seconds);
  json params() const;
  void check_params();

  const BuildOptions& o_;
  engine::EngineSpec spec_;
  std::unique_ptr<engine::Engine> engine_;
  bool isnet_masks_ = false;  // --mask isnet: the engine makes each mask from the box
  std::string backend_name_;
  CocoDataset ds_;
  std::int64_t person_cat_ = -1;
  std::map<std::int64_t, std::string> accessory_cats_;  // id -> name
  std::vector<ImageWork> work_;
  std::int64_t persons_total_ = 0;
  std::set<Key> done_;
  std::set<Key> kept_keys_;  // every instance with a valid record (old and new)
  std::mutex kept_mutex_;
  std::unique_ptr<JournalWriter> index_, skipped_;
  std::string index_path_, skipped_path_, summary_path_;
  Counters skipped_counts_;  // reasons counted during this run (not journaled ones)
  std::atomic<std::int64_t> kept_new_{0}, resumed_{0}, fused_{0}, solved_{0};
  std::unique_ptr<Progress> progress_;
  std::exception_ptr fatal_;
  std::mutex fatal_mutex_;
  std::atomic<bool> stop_{false};
  int stale_temps_ = 0;
  int index_repairs_ = 0;
};

void Builder::check_options() {
  std::error_code ec;
  SEMAT_CHECK(!o_.annotations.empty() && fs::is_regular_file(o_.annotations, ec), ConfigError,
              "--annotations '" << o_.annotations << "' is not a file (give a COCO JSON)");
  SEMAT_CHECK(
      !o_.images.empty() && fs::is_directory(o_.images, ec), ConfigError,
      "--images '" << o_.images << "' is not a folder (give the folder of the COCO images)");
  SEMAT_CHECK(!o_.out.empty(), ConfigError, "--out is required");
  SEMAT_CHECK(o_.eta > 0, ConfigError, "--eta must be positive, got " << o_.eta);
  SEMAT_CHECK(o_.fusion.tau >= 0 && o_.fusion.tau <= 1, ConfigError,
              "--tau must be in [0, 1], got " << o_.fusion.tau);
  SEMAT_CHECK(o_.min_score >= 0 && o_.min_score <= 100, ConfigError,
              "--min-score must be in [0, 100], got " << o_.min_score);
  SEMAT_CHECK(o_.jobs >= 0, ConfigError, "--jobs must be >= 0 (0 = all cores), got " << o_.jobs);
  SEMAT_CHECK(o_.limit >= 0, ConfigError, "--limit must be >= 0 (0 = no limit), got " << o_.limit);
  SEMAT_CHECK(o_.panoptic_masks.empty() || fs::is_directory(o_.panoptic_masks, ec), ConfigError,
              "--panoptic-masks '" << o_.panoptic_masks << "' is not a folder");
  SEMAT_CHECK(o_.shard.count >= 1 && o_.shard.index >= 0 && o_.shard.index < o_.shard.count,
              ConfigError, "--shard K/N needs 0 <= K < N");
}

void Builder::prepare_output() {
  io::ensure_writable_dir(o_.out);
  for (const char* d : {"alpha", "trimap"}) io::ensure_writable_dir(path_in_out(d));
  if (o_.export_concat) io::ensure_writable_dir(path_in_out(kConcatDir));
  const std::string sfx = o_.shard.suffix();
  index_path_ = path_in_out("index" + sfx + ".jsonl");
  skipped_path_ = path_in_out("skipped" + sfx + ".jsonl");
  summary_path_ = path_in_out("summary" + sfx + ".json");
  for (const char* d : {"alpha", "trimap", kConcatDir})
    stale_temps_ += remove_stale_temps(path_in_out(d), o_.shard);
  if (stale_temps_ > 0)
    SEMAT_LOG_INFO("data", "removed " << stale_temps_ << " temporary files of an interrupted run");
}

void Builder::load_annotations() {
  Timer t;
  LoadOptions lo;
  const Shard shard = o_.shard;
  if (shard.count > 1) lo.keep_image = [shard](std::int64_t id) { return shard.contains(id); };
  ds_ = load_coco(o_.annotations, lo);
  SEMAT_LOG_INFO("data", "read " << o_.annotations << " ("
                                 << (ds_.panoptic ? "panoptic" : "instances")
                                 << "): " << ds_.images.size() << " images, "
                                 << ds_.annotations.size() << " annotations"
                                 << (shard.count > 1 ? " in shard " + std::to_string(shard.index) +
                                                           "/" + std::to_string(shard.count)
                                                     : std::string())
                                 << " in " << Progress::duration(t.seconds()));
  person_cat_ = ds_.category_id("person");
  SEMAT_CHECK(person_cat_ >= 0, DataError,
              "annotations '" << o_.annotations
                              << "': no category named 'person' in \"categories\"; the builder "
                                 "mattes people and finds them by name");
  SEMAT_CHECK(!ds_.panoptic || !o_.panoptic_masks.empty(), ConfigError,
              "annotations '" << o_.annotations
                              << "' are panoptic (segments_info): give the folder of their PNGs "
                                 "with --panoptic-masks");
  std::set<std::string> wanted;
  if (o_.accessories.empty()) {
    for (const std::string& n : default_accessory_names()) wanted.insert(n);
    for (const auto& [id, c] : ds_.categories)
      if (c.supercategory == "accessory") wanted.insert(c.name);
  } else {
    wanted.insert(o_.accessories.begin(), o_.accessories.end());
  }
  for (const auto& [id, c] : ds_.categories)
    if (wanted.count(c.name) && id != person_cat_) accessory_cats_[id] = c.name;
  if (!o_.accessories.empty()) {
    for (const std::string& n : o_.accessories)
      if (ds_.category_id(n) < 0)
        SEMAT_LOG_WARN("data", "--accessories: no category named '"
                                   << n << "' in " << o_.annotations << "; it is ignored");
  }
}

void Builder::plan() {
  std::map<std::int64_t, ImageWork> by_image;  // sorted by image id: a deterministic order
  for (const std::string& e : ds_.image_errors) {
    skipped_counts_.add("broken_image_entry");
    SEMAT_LOG_WARN("data", "skipped " << e);
  }
  for (const CocoAnnotation& a : ds_.annotations) {
    const bool person = a.category_id == person_cat_;
    const bool accessory = accessory_cats_.count(a.category_id) > 0;
    const std::string prefix = person ? "" : "accessory_";
    if (!a.error.empty()) {
      if (!person && !accessory && a.category_id >= 0) continue;
      const std::string reason =
          person || a.category_id < 0 ? "broken_segmentation" : "accessory_broken_segmentation";
      skipped_counts_.add(reason);
      SEMAT_LOG_WARN("data", "skipped annotation " << a.id << " of image " << a.image_id << " ("
                                                   << reason << "): " << a.error);
      continue;
    }
    if (!person && !accessory) continue;
    if (a.iscrowd) {  // a crowd region is a group, not an instance to matte or fuse
      if (person) skipped_counts_.add("crowd");
      continue;
    }
    const auto im = ds_.images.find(a.image_id);
    if (im == ds_.images.end()) {
      skipped_counts_.add(prefix + "unknown_image");
      SEMAT_LOG_WARN("data", "skipped annotation " << a.id << ": image id " << a.image_id
                                                   << " is not in \"images\" (" << prefix
                                                   << "unknown_image)");
      continue;
    }
    ImageWork& w = by_image[a.image_id];
    w.image = &im->second;
    (person ? w.competitors : w.accessories).push_back(&a);
  }
  for (auto& [id, w] : by_image) {
    if (w.competitors.empty()) continue;
    for (const CocoAnnotation* p : w.competitors) {
      if (o_.limit > 0 && persons_total_ >= o_.limit) break;
      w.persons.push_back(p);
      ++persons_total_;
    }
    if (w.persons.empty()) break;
    work_.push_back(std::move(w));
  }
}

void Builder::load_done() {
  JournalContents idx = read_journal(index_path_, /*repair=*/true);
  if (idx.torn_bytes > 0) {
    ++index_repairs_;
    SEMAT_LOG_WARN("data", "cut a torn last line (" << idx.torn_bytes << " bytes) from "
                                                    << index_path_
                                                    << ": an earlier run was interrupted");
  }
  if (idx.corrupt_lines > 0)
    SEMAT_LOG_WARN("data",
                   "ignored " << idx.corrupt_lines << " unreadable lines in " << index_path_);
  int unverified = 0;
  for (const json& j : idx.lines) {
    IndexRecord r;
    try {
      r = IndexRecord::from_json(j, index_path_);
    } catch (const DataError&) {
      continue;
    }
    const Key k{r.image_id, r.ann_id};
    bool ok = png_file_complete(path_in_out(r.alpha)) && png_file_complete(path_in_out(r.trimap));
    if (o_.export_concat) ok = ok && !r.concat.empty() && png_file_complete(path_in_out(r.concat));
    if (ok) {
      done_.insert(k);
      kept_keys_.insert(k);
    } else if (!done_.count(k)) {
      ++unverified;
    }
  }
  if (unverified > 0)
    SEMAT_LOG_WARN("data", unverified << " indexed instances have missing or damaged files and "
                                      << "will be built again");
  JournalContents sk = read_journal(skipped_path_, /*repair=*/true);
  for (const json& j : sk.lines) {
    if (j.contains("image_id") && j.contains("ann_id") && j["image_id"].is_number_integer() &&
        j["ann_id"].is_number_integer())
      done_.insert({j["image_id"].get<std::int64_t>(), j["ann_id"].get<std::int64_t>()});
  }
  index_ = std::make_unique<JournalWriter>(index_path_);
  skipped_ = std::make_unique<JournalWriter>(skipped_path_);
}

void Builder::skip_persons(const std::vector<const CocoAnnotation*>& persons,
                           const std::string& reason, const std::string& why,
                           const CocoImage& image) {
  skipped_counts_.add(reason, static_cast<std::int64_t>(persons.size()));
  progress_->warn("skipped image " + std::to_string(image.id) + " '" + image.file_name + "' (" +
                  reason + ", " + std::to_string(persons.size()) + " instances): " + why);
  progress_->add(static_cast<std::int64_t>(persons.size()), 0);
}

void Builder::process(const ImageWork& w) {
  const CocoImage& im = *w.image;
  std::vector<const CocoAnnotation*> pending;
  for (const CocoAnnotation* p : w.persons)
    if (!in_done({im.id, p->id})) pending.push_back(p);
  const std::int64_t resumed = static_cast<std::int64_t>(w.persons.size() - pending.size());
  resumed_ += resumed;
  if (resumed > 0) progress_->add(0, resumed);
  if (pending.empty()) return;

  const std::string image_path = (fs::path(o_.images) / im.file_name).string();
  std::error_code ec;
  if (!fs::is_regular_file(image_path, ec))
    return skip_persons(pending, "missing_image", "no file '" + image_path + "'", im);
  cv::Mat image;
  try {
    image = io::read_color(image_path);
  } catch (const std::exception& e) {
    return skip_persons(pending, "bad_image", item_error(e), im);
  }
  if (image.cols != im.width || image.rows != im.height)
    return skip_persons(pending, "bad_image",
                        "the file is " + std::to_string(image.cols) + "x" +
                            std::to_string(image.rows) + " but the annotations say " +
                            std::to_string(im.width) + "x" + std::to_string(im.height),
                        im);
  cv::Mat panoptic;
  if (ds_.panoptic) {
    const std::string png =
        (fs::path(o_.panoptic_masks) / w.competitors.front()->segmentation.png).string();
    if (!fs::is_regular_file(png, ec))
      return skip_persons(pending, "missing_panoptic_png", "no file '" + png + "'", im);
    try {
      panoptic = panoptic_ids(io::decode_color(io::read_file(png), png));  // codec lines folded (io)
    } catch (const std::exception& e) {
      return skip_persons(pending, "missing_panoptic_png", png + ": " + item_error(e), im);
    }
  }

  // Masks of every person and accessory of the image: fusion compares each accessory with all
  // people, including those built by an earlier run.
  auto decode = [&](const CocoAnnotation* a, FusionInstance* out) -> std::string {
    try {
      out->id = a->id;
      out->mask = decode_mask(*a, im, panoptic);
    } catch (const std::exception& e) {
      return item_error(e);
    }
    if (cv::countNonZero(out->mask) == 0) return "";
    if (a->has_bbox) {
      out->box = a->box;
    } else {
      const cv::Rect r = cv::boundingRect(out->mask);
      out->box = Box{double(r.x), double(r.y), double(r.x + r.width), double(r.y + r.height)};
    }
    return "";
  };
  std::vector<FusionInstance> persons;
  std::vector<const CocoAnnotation*> person_anns;
  std::unordered_map<std::int64_t, std::string> person_error;
  for (const CocoAnnotation* a : w.competitors) {
    FusionInstance f;
    const std::string err = decode(a, &f);
    if (!err.empty()) {
      person_error[a->id] = err;
      continue;
    }
    persons.push_back(std::move(f));
    person_anns.push_back(a);
  }
  std::vector<FusionInstance> accessories;
  std::vector<const CocoAnnotation*> accessory_anns;
  for (const CocoAnnotation* a : w.accessories) {
    FusionInstance f;
    const std::string err = decode(a, &f);
    if (!err.empty()) {
      skipped_counts_.add("accessory_broken_segmentation");
      progress_->warn("ignored accessory " + std::to_string(a->id) + " of image " +
                      std::to_string(im.id) + " (accessory_broken_segmentation): " + err);
      continue;
    }
    if (cv::countNonZero(f.mask) == 0) continue;
    accessories.push_back(std::move(f));
    accessory_anns.push_back(a);
  }
  const std::vector<FusionDecision> decisions = assign_accessories(persons, accessories, o_.fusion);

  for (const CocoAnnotation* p : pending) {
    if (stop_) return;
    const Key key{im.id, p->id};
    const std::string stem = instance_stem(im.id, p->id);
    if (auto e = person_error.find(p->id); e != person_error.end()) {
      skipped_counts_.add("broken_segmentation");
      progress_->warn("skipped person " + stem + " (broken_segmentation): " + e->second);
      progress_->add(1, 0);
      continue;
    }
    const size_t pi = static_cast<size_t>(std::find(person_anns.begin(), person_anns.end(), p) -
                                          person_anns.begin());
    const FusionInstance& person = persons[pi];
    IndexRecord rec;
    rec.image_id = im.id;
    rec.ann_id = p->id;
    rec.image = im.file_name;
    rec.width = im.width;
    rec.height = im.height;
    rec.box = person.box;
    cv::Mat fused = person.mask.clone();
    for (size_t a = 0; a < decisions.size(); ++a) {
      if (decisions[a].person != static_cast<int>(pi)) continue;
      cv::bitwise_or(fused, accessories[a].mask, fused);
      rec.fused_ids.push_back(accessory_anns[a]->id);
      rec.fused_categories.push_back(accessory_cats_.at(accessory_anns[a]->category_id));
    }
    rec.area = cv::countNonZero(fused);
    if (rec.area == 0) {
      skipped_counts_.add("empty_mask");
      progress_->warn("skipped person " + stem + " (empty_mask): its segmentation has no pixels");
      progress_->add(1, 0);
      continue;
    }
    rec.backend = backend_name_;
    matting::MatteResult matte;
    try {
      // The box prompts box-driven models (SEMat); closed-form uses only the mask. COCO boxes
      // may overhang the image by rounding.
      engine::Prompt prompt;
      prompt.box = Box{std::clamp(person.box.x0, 0.0, double(image.cols)),
                       std::clamp(person.box.y0, 0.0, double(image.rows)),
                       std::clamp(person.box.x1, 0.0, double(image.cols)),
                       std::clamp(person.box.y1, 0.0, double(image.rows))};
      if (!isnet_masks_) prompt.mask = fused;
      matte = std::move(engine_->run(image, {prompt}).at(0));
      SEMAT_CHECK(matte.alpha.type() == CV_32F && matte.alpha.size() == image.size(), DataError,
                  "backend " << backend_name_ << " returned a matte of the wrong type or size");
    } catch (const std::exception& e) {
      const std::string why = item_error(e);
      skipped_->append({{"image_id", im.id},
                        {"ann_id", p->id},
                        {"reason", "matting_failed"},
                        {"error", why}});
      progress_->warn("skipped person " + stem + " (matting_failed): " + why);
      progress_->add(1, 0);
      ++solved_;
      continue;
    }
    rec.omega = matte.omega;
    const cv::Mat& alpha = matte.alpha;
    ++solved_;
    rec.score = mask_iou_percent(alpha, fused);
    if (rec.score < o_.min_score) {
      skipped_->append(
          {{"image_id", im.id}, {"ann_id", p->id}, {"reason", "low_score"}, {"score", rec.score}});
      progress_->add(1, 0);
      continue;
    }
    const cv::Mat a8 = alpha_to_u8(alpha);
    rec.alpha = "alpha/" + stem + ".png";
    rec.trimap = "trimap/" + stem + ".png";
    io::write_file_atomic(path_in_out(rec.alpha), io::encode_png(a8));
    io::write_file_atomic(path_in_out(rec.trimap), io::encode_png(matte.trimap));
    if (o_.export_concat) {
      cv::Mat a3, t3, panels;
      cv::cvtColor(a8, a3, cv::COLOR_GRAY2BGR);
      cv::cvtColor(matte.trimap, t3, cv::COLOR_GRAY2BGR);
      cv::hconcat(std::vector<cv::Mat>{image, a3, t3}, panels);
      rec.concat = std::string(kConcatDir) + "/" + stem + ".png";
      io::write_file_atomic(path_in_out(rec.concat), io::encode_png(panels));
    }
    // The record goes last: an index line always names files that are already in place.
    index_->append(rec.to_json());
    {
      std::lock_guard<std::mutex> lock(kept_mutex_);
      kept_keys_.insert(key);
    }
    ++kept_new_;
    fused_ += static_cast<std::int64_t>(rec.fused_ids.size());
    progress_->add(1, 0);
  }
}

void Builder::worker(std::atomic<size_t>& next) {
  for (;;) {
    if (stop_) return;
    const size_t i = next++;
    if (i >= work_.size()) return;
    try {
      process(work_[i]);
    } catch (...) {
      // Anything not handled per instance (a full disk, a broken output folder) ends the run;
      // what was appended so far stays valid and the rerun resumes from it.
      std::lock_guard<std::mutex> lock(fatal_mutex_);
      if (!fatal_) fatal_ = std::current_exception();
      stop_ = true;
      return;
    }
  }
}

json Builder::params() const {
  json acc = json::array();
  for (const auto& [id, name] : accessory_cats_) acc.push_back(name);
  return {{"tau", o_.fusion.tau},
          {"overlap", overlap_mode_name(o_.fusion.overlap)},
          {"touch_dilation", o_.fusion.touch_dilation},
          {"eta", o_.eta},
          {"min_score", o_.min_score},
          {"accessories", acc},
          {"backend", backend_name_}};
}

// Resuming with other parameters would silently mix two datasets in one index, so the first run
// records its parameters and later runs must match them (--limit, --jobs, --export-concat may
// change).
void Builder::check_params() {
  const std::string path = path_in_out("params" + o_.shard.suffix() + ".json");
  const json now = params();
  std::ifstream in(path);
  if (in) {
    const json before = json::parse(in, nullptr, false);
    if (before.is_object() && before != now) {
      std::string diff;
      for (const auto& [k, v] : now.items())
        if (!before.contains(k) || before[k] != v)
          diff += (diff.empty() ? "" : ", ") + k + " " +
                  (before.contains(k) ? before[k].dump() : std::string("unset")) + " -> " +
                  v.dump();
      throw ConfigError("--out '" + o_.out + "' holds a build with other parameters (" + diff +
                        "); resume with the same flags or choose a new --out");
    }
    if (before.is_object()) return;
  }
  const std::string text = now.dump(2) + "\n";
  io::write_file_atomic(path, std::vector<std::uint8_t>(text.begin(), text.end()));
}

json Builder::summary(double seconds) {
  std::map<std::string, std::int64_t> skipped = skipped_counts_.snapshot();
  // Journaled reasons are counted from the journal so that resumed runs report all of them.
  std::map<Key, std::string> journaled;
  for (const json& j : read_journal(skipped_path_, false).lines) {
    if (!j.contains("image_id") || !j.contains("ann_id") || !j.contains("reason") ||
        !j["image_id"].is_number_integer() || !j["ann_id"].is_number_integer() ||
        !j["reason"].is_string())
      continue;
    const Key k{j["image_id"].get<std::int64_t>(), j["ann_id"].get<std::int64_t>()};
    if (!kept_keys_.count(k)) journaled[k] = j["reason"].get<std::string>();
  }
  for (const auto& [k, reason] : journaled) ++skipped[reason];
  json s;
  s["annotations"] = o_.annotations;
  s["images_dir"] = o_.images;
  s["panoptic"] = ds_.panoptic;
  s["backend"] = backend_name_;
  s["shard"] = std::to_string(o_.shard.index) + "/" + std::to_string(o_.shard.count);
  s["params"] = params();
  s["params"]["limit"] = o_.limit;
  s["images"] = work_.size();
  s["persons"] = persons_total_;
  s["kept"] = kept_keys_.size();
  s["kept_new"] = kept_new_.load();
  s["resumed"] = resumed_.load();
  s["solved"] = solved_.load();
  s["fused_accessories"] = fused_.load();
  s["skipped"] = skipped;
  s["stale_temp_files_removed"] = stale_temps_;
  s["index_repairs"] = index_repairs_;
  s["seconds"] = seconds;
  s["jobs"] = o_.jobs;
  s["engine"] = engine_->description();
  s["precision"] = engine_->precision();
  return s;
}

json Builder::run() {
  Timer total;
  check_options();
  const int jobs = o_.jobs > 0 ? o_.jobs : std::max(1u, std::thread::hardware_concurrency());
  {
    // The builder's masks are the fused COCO masks; its trimap rule is the paper's, with --eta.
    engine::EngineSpec spec = spec_;
    // Or, with --mask isnet, from the learned prior on each person's box (the annotation's mask
    // still decides the IoU filter); --prior does not apply (the annotations are the default).
    SEMAT_CHECK(spec.mask == "auto" || spec.mask == "given" || spec.mask == "isnet", ConfigError,
                "--mask " << spec.mask << ": build-dataset takes its masks from the annotations "
                          << "(--mask given, the default) or from the learned prior (--mask isnet)");
    isnet_masks_ = spec.mask == "isnet";
    if (!isnet_masks_) spec.mask = "given";
    spec.prior = "auto";
    spec.classical.trimap.eta = o_.eta;
    if (spec.classical.crop_margin < 0) spec.classical.crop_margin = 8;
    engine_ = std::make_unique<engine::Engine>(spec);
  }
  backend_name_ = engine_->alpha_name();
  prepare_output();
  RunLock lock(path_in_out(".build" + o_.shard.suffix() + ".lock"));
  load_annotations();
  check_params();
  plan();
  load_done();
  SEMAT_LOG_INFO("data", "building " << persons_total_ << " person instances in " << work_.size()
                                     << " images with " << jobs << " jobs (backend "
                                     << backend_name_ << ", " << done_.size() << " already done)");
  progress_ = std::make_unique<Progress>(o_.progress, persons_total_);
  {
    CvThreadsScope cv_threads(jobs > 1 ? 1 : cv::getNumThreads());
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < jobs; ++i)
      threads.emplace_back([this, &next] { worker(next); });
    for (std::thread& t : threads) t.join();
  }
  progress_->finish();
  if (fatal_) std::rethrow_exception(fatal_);
  json s = summary(total.seconds());
  const std::string text = s.dump(2) + "\n";
  io::write_file_atomic(summary_path_, std::vector<std::uint8_t>(text.begin(), text.end()));
  return s;
}

}  // namespace

json build_dataset(const BuildOptions& options, const engine::EngineSpec& engine) {
  Builder b(options, engine);
  return b.run();
}

// ---------------------------------------------------------------------------------------------
// merge-index

json merge_indexes(const MergeOptions& o) {
  SEMAT_CHECK(!o.inputs.empty(), ConfigError,
              "merge-index needs at least one input folder or index");
  SEMAT_CHECK(!o.out.empty(), ConfigError, "merge-index needs --out");
  static const std::regex index_re(R"(^index(-\d+-of-\d+)?\.jsonl$)");
  std::vector<fs::path> files;
  for (const std::string& in : o.inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<fs::path> found;
      for (const auto& e : fs::directory_iterator(in, ec))
        if (std::regex_match(e.path().filename().string(), index_re)) found.push_back(e.path());
      std::sort(found.begin(), found.end());
      SEMAT_CHECK(!found.empty(), ConfigError,
                  "merge-index: folder '" << in << "' holds no index.jsonl or index-K-of-N.jsonl "
                                          << "(is it a build-dataset --out folder?)");
      files.insert(files.end(), found.begin(), found.end());
    } else {
      SEMAT_CHECK(fs::is_regular_file(in, ec), ConfigError,
                  "merge-index: input '" << in << "' is neither a folder nor a file");
      files.emplace_back(in);
    }
  }
  io::ensure_writable_dir(o.out);
  const fs::path out_abs = fs::absolute(o.out).lexically_normal();
  std::map<Key, IndexRecord> merged;
  std::int64_t duplicates = 0, dropped = 0, torn = 0;
  json summary = {{"inputs", json::array()}};
  std::map<std::string, std::int64_t> skipped;
  std::map<std::string, std::int64_t> sums;
  for (const fs::path& f : files) {
    const fs::path dir = fs::absolute(f).parent_path().lexically_normal();
    const std::string name = f.filename().string();
    JournalContents jc = read_journal(f.string(), /*repair=*/false);
    if (jc.torn_bytes > 0 || jc.corrupt_lines > 0) {
      ++torn;
      SEMAT_LOG_WARN("data", f.string() << ": ignored a torn or unreadable line (is its build "
                                           "still running? rerun it to finish and repair)");
    }
    summary["inputs"].push_back(f.string());
    auto rebase = [&](const std::string& rel) {
      if (rel.empty()) return rel;
      return (dir / rel).lexically_normal().lexically_relative(out_abs).string();
    };
    for (const json& j : jc.lines) {
      IndexRecord r = IndexRecord::from_json(j, f.string());
      r.alpha = rebase(r.alpha);
      r.trimap = rebase(r.trimap);
      r.concat = rebase(r.concat);
      if (o.verify && !(png_file_complete((out_abs / r.alpha).string()) &&
                        png_file_complete((out_abs / r.trimap).string()))) {
        ++dropped;
        continue;
      }
      const Key k{r.image_id, r.ann_id};
      if (merged.count(k)) ++duplicates;
      merged[k] = std::move(r);
    }
    // The matching summary: index-3-of-8.jsonl -> summary-3-of-8.json.
    std::ifstream sf;
    if (std::regex_match(name, index_re))
      sf.open(dir / ("summary" + name.substr(5, name.size() - 5 - 6) + ".json"));
    if (sf) {
      json sj = json::parse(sf, nullptr, false);
      if (sj.is_object()) {
        for (const char* k :
             {"images", "persons", "kept_new", "resumed", "solved", "fused_accessories"})
          if (sj.contains(k) && sj[k].is_number_integer()) sums[k] += sj[k].get<std::int64_t>();
        if (sj.contains("skipped") && sj["skipped"].is_object())
          for (const auto& [reason, n] : sj["skipped"].items())
            if (n.is_number_integer()) skipped[reason] += n.get<std::int64_t>();
        if (!summary.contains("params") && sj.contains("params")) summary["params"] = sj["params"];
        if (!summary.contains("backend") && sj.contains("backend"))
          summary["backend"] = sj["backend"];
      }
    }
  }
  std::string text;
  for (const auto& [k, r] : merged) text += r.to_json().dump() + "\n";
  io::write_file_atomic((out_abs / "index.jsonl").string(),
                        std::vector<std::uint8_t>(text.begin(), text.end()));
  for (const auto& [k, v] : sums) summary[k] = v;
  summary["skipped"] = skipped;
  summary["kept"] = merged.size();
  summary["duplicates"] = duplicates;
  summary["dropped_unverified"] = dropped;
  summary["inputs_with_torn_lines"] = torn;
  const std::string st = summary.dump(2) + "\n";
  io::write_file_atomic((out_abs / "summary.json").string(),
                        std::vector<std::uint8_t>(st.begin(), st.end()));
  return summary;
}

}  // namespace semat::data
