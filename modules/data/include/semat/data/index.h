// index.jsonl: one JSON object per line and per kept matte, appended as instances finish. A line
// is appended with one write() and made durable with fsync() before the next one, so a crash
// (kill -9, power loss) can only leave a torn *last* line, which read_journal detects and cuts.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "semat/core/geometry.h"

namespace semat::data {

/// One kept matte. Paths are relative to the folder holding the index file.
struct IndexRecord {
  std::int64_t image_id = 0;
  std::int64_t ann_id = 0;                    ///< the person's annotation (panoptic: segment) id
  std::string image;                          ///< the image's file_name, relative to --images
  int width = 0, height = 0;                  ///< image size, pixels
  Box box;                                    ///< the person's box, XYXY pixels
  std::vector<std::int64_t> fused_ids;        ///< accessory annotation ids merged in
  std::vector<std::string> fused_categories;  ///< their category names, same order
  double score = 0;       ///< IoU x 100 of alpha > 0.5 against the fused mask, [0, 100]
  std::string backend;    ///< the engine's alpha stage, e.g. "closed-form", "semat"
  double omega = 0;       ///< trimap erosion size, pixels
  std::int64_t area = 0;  ///< fused mask area, pixels
  std::string alpha;      ///< "alpha/<image_id>_<ann_id>.png"
  std::string trimap;     ///< "trimap/<image_id>_<ann_id>.png"
  std::string concat;     ///< "SEMat_concat/<image_id>_<ann_id>.png" or empty

  nlohmann::json to_json() const;
  /// Throws DataError naming `where` and the field when a field is missing or mistyped.
  static IndexRecord from_json(const nlohmann::json& j, const std::string& where);
};

/// "<image_id>_<ann_id>": the stem of every output file of an instance.
std::string instance_stem(std::int64_t image_id, std::int64_t ann_id);

/// Appends whole lines to a JSON-lines file; safe to call from several threads.
class JournalWriter {
 public:
  /// Opens (creating) `path` for appending. Throws IoError naming it.
  explicit JournalWriter(const std::string& path);
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  /// Writes `value.dump()` + '\n' with a single write() and fsyncs it.
  void append(const nlohmann::json& value);

 private:
  std::string path_;
  int fd_ = -1;
  std::mutex mutex_;
};

struct JournalContents {
  std::vector<nlohmann::json> lines;  ///< the parsed complete lines, in order
  std::uint64_t torn_bytes = 0;       ///< bytes of an unterminated last line (cut when repairing)
  int corrupt_lines = 0;              ///< complete lines that are not JSON objects (skipped)
};

/// Reads a JSON-lines journal; a missing file reads as empty. With `repair`, a torn last line
/// is truncated off the file so that later appends start on a fresh line.
JournalContents read_journal(const std::string& path, bool repair);

/// True when `path` is a complete PNG: its signature and a final IEND chunk are present (outputs
/// are renamed into place whole, so this only fails for files damaged by something else).
bool png_file_complete(const std::string& path);

}  // namespace semat::data
