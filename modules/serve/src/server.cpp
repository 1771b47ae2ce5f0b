#include "semat/serve/server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <strings.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "header_guard.h"
#include "image_store.h"
#include "request_params.h"
#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/core/timer.h"
#include "semat/io/image_io.h"
#include "semat/io/json.h"
#include "semat/matting/compose.h"
#include "semat/serve/image_probe.h"
#include "web_assets.h"
#include "work_queue.h"

namespace semat::serve {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr const char* kTag = "serve";
// Connection handling (see ConnectionThreads): at most this many open connections are served at
// once (more wait for a thread); idle connections close after kIdleTimeoutS, a read that stalls
// for kReadTimeoutS ends its connection.
constexpr std::size_t kMaxConnectionThreads = 2048;
constexpr time_t kIdleTimeoutS = 5;
constexpr time_t kReadTimeoutS = 5;
// Request headers beyond this count, or a header section over kMaxHeaderBytes, are refused (431)
// before httplib reads them (GuardedServer); httplib itself caps each line at 8 KiB.
constexpr std::size_t kMaxHeaders = 64;
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
// Multipart bodies: parts beyond this count are refused (the API reads four fields at most), and
// each part's header costs this much of the body budget on top of its names, so that a body of
// many empty parts is bounded like any other.
constexpr std::size_t kMaxParts = 16;
constexpr std::size_t kPartOverhead = 256;

// Answers are dumped with invalid UTF-8 replaced (U+FFFD): a message quoting a client's bytes
// must not turn a 400 into a 500 (nlohmann's dump() throws on invalid UTF-8 by default).
std::string dump_answer(const json& body) { return body.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(dump_answer(json{{"error", {{"code", code}, {"message", message}}}}), "application/json");
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump_answer(body), "application/json");
}

std::string base64(const std::vector<std::uint8_t>& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += t[v & 63];
  }
  if (i + 1 == in.size()) {
    const std::uint32_t v = in[i] << 16;
    out += t[v >> 18], out += t[(v >> 12) & 63], out += "==";
  } else if (i + 2 == in.size()) {
    const std::uint32_t v = (in[i] << 16) | (in[i + 1] << 8);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += '=';
  }
  return out;
}

std::string content_type_for(const std::string& name) {
  auto ends = [&](const char* ext) {
    const std::size_t n = std::strlen(ext);
    return name.size() >= n && name.compare(name.size() - n, n, ext) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".png")) return "image/png";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".ico")) return "image/x-icon";
  return "application/octet-stream";
}

bool wants_png(const httplib::Request& req) {
  const std::string accept = req.get_header_value("Accept");
  return accept.find("image/png") != std::string::npos && accept.find("application/json") == std::string::npos;
}

/// From multipart fields boxes / outputs / background (text fields must be UTF-8).
MatteParams params_from_form(const httplib::Request& req, int max_boxes) {
  return matte_params_from_form(
      [&req](const char* name) -> const std::string* {
        const auto it = req.files.find(name);
        return it == req.files.end() ? nullptr : &it->second.content;
      },
      wants_png(req), max_boxes);
}

/// From a JSON body {"boxes": ..., "outputs": [...], "background": "..."}.
MatteParams params_from_json(const httplib::Request& req, int max_boxes) {
  return matte_params_from_json(req.body, wants_png(req), max_boxes);
}

/// The image bytes of a request: the multipart 'image' file, or a raw body. A reference into
/// `req` (get_file_value would copy up to --max-upload-mb).
const std::string& image_bytes(const httplib::Request& req) {
  if (req.is_multipart_form_data()) {
    const auto it = req.files.find("image");
    if (it == req.files.end())
      throw HttpError(400, "missing_field", "the form needs an 'image' file (PNG, JPEG or WebP)");
    return it->second.content;
  }
  return req.body;
}

/// The one-line decompression-bomb and format gate, before any pixel is decoded.
ImageHeader probe_upload(const std::string& bytes, long long max_pixels) {
  ImageHeader h;
  try {
    h = probe_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  } catch (const ImageProbeError& e) {
    switch (e.kind()) {
      case ImageProbeError::Kind::kUnsupported: throw HttpError(415, "unsupported_image", e.what());
      case ImageProbeError::Kind::kTruncated: throw HttpError(400, "truncated_image", e.what());
      case ImageProbeError::Kind::kCorrupt: throw HttpError(400, "corrupt_image", e.what());
    }
  }
  const long long pixels = static_cast<long long>(h.width) * h.height;
  if (pixels > max_pixels)
    throw HttpError(413, "image_too_large", "the image is " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                                               " (" + std::to_string(pixels) + " pixels), over the server's limit of " +
                                               std::to_string(max_pixels) + " pixels (--max-pixels)");
  return h;
}

/// The bytes are copied once here: a job may outlive the request that queued it (timeout), so it
/// must not refer to the request's buffers.
std::shared_ptr<const std::vector<std::uint8_t>> own_bytes(const std::string& bytes) {
  return std::make_shared<const std::vector<std::uint8_t>>(bytes.begin(), bytes.end());
}

cv::Mat decode_upload(const std::vector<std::uint8_t>& bytes, const ImageHeader& h) {
  cv::Mat image;
  try {
    image = io::decode_color(bytes, "upload");
  } catch (const IoError& e) {
    throw HttpError(400, "corrupt_image", e.what());
  }
  // The header said one size; a decoder that disagrees means a crafted or broken file.
  if (image.cols != h.width || image.rows != h.height)
    throw HttpError(400, "corrupt_image", "the image decodes to a different size than its header says");
  return image;
}

struct Merged {
  cv::Mat alpha, foreground, trimap;
};

/// Several boxes make one cut-out: per pixel, the instance with the highest alpha wins.
Merged merge(const std::vector<matting::MatteResult>& results) {
  Merged m{results[0].alpha.clone(), results[0].foreground.clone(), results[0].trimap.clone()};
  for (std::size_t i = 1; i < results.size(); ++i) {
    const cv::Mat better = results[i].alpha > m.alpha;
    results[i].foreground.copyTo(m.foreground, better);
    m.alpha = cv::max(m.alpha, results[i].alpha);
    m.trimap = cv::max(m.trimap, results[i].trimap);
  }
  return m;
}

std::vector<std::uint8_t> render(const std::string& name, const cv::Mat& image, const Merged& m,
                                 const MatteParams& p) {
  if (name == "alpha") return io::encode_png(matting::quantize_alpha(m.alpha, 8));
  if (name == "cutout") return io::encode_png(matting::cutout(m.foreground, m.alpha));
  if (name == "composite") {
    matting::Background bg;
    bg.bgr = p.background;
    return io::encode_png(matting::composite(m.foreground, m.alpha, bg));
  }
  if (name == "trimap") return io::encode_png(m.trimap);
  cv::Mat out = matting::overlay(image, m.alpha, std::nullopt);
  return io::encode_png(out);
}

struct MatteAnswer {
  json report;
  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> pngs;
};

thread_local Clock::time_point t_request_start;

/// The request with its body read through httplib's ContentReader, every byte counted as it
/// arrives: the body limit holds for chunked bodies too (httplib 0.11 applies its payload limit
/// only to a Content-Length), the read stops at the first byte over it (413), and a body that
/// has not arrived within `deadline_s` of the headers is cut off (408). `req.matches` point into
/// `req.path`, which outlives the copy.
httplib::Request read_body(const httplib::Request& req, const httplib::Response& res,
                           const httplib::ContentReader& reader, std::uint64_t max_body, int max_upload_mb,
                           double deadline_s) {
  httplib::Request full = req;
  std::uint64_t taken = 0;
  std::size_t parts = 0;
  bool over = false, late = false;
  const Clock::time_point deadline =
      t_request_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(deadline_s));
  auto take = [&](std::size_t n) {
    taken += n;
    over = over || taken > max_body;
    late = late || Clock::now() > deadline;
    return !over && !late;
  };
  bool ok = false;
  if (req.is_multipart_form_data()) {
    auto current = full.files.end();
    ok = reader(
        [&](const httplib::MultipartFormData& part) {
          if (++parts > kMaxParts) return false;
          if (!take(kPartOverhead + part.name.size() + part.filename.size() + part.content_type.size())) return false;
          current = full.files.emplace(part.name, part);
          return true;
        },
        [&](const char* data, std::size_t n) {
          if (!take(n)) return false;
          current->second.content.append(data, n);
          return true;
        });
  } else {
    ok = reader([&](const char* data, std::size_t n) {
      if (!take(n)) return false;
      full.body.append(data, n);
      return true;
    });
  }
  if (over || (!ok && res.status == 413))  // httplib's own 413: a Content-Length over the limit
    throw HttpError(413, "upload_too_large",
                    "the request body is larger than the server's limit of " + std::to_string(max_upload_mb) +
                        " MiB (--max-upload-mb)");
  if (late)
    throw HttpError(408, "request_timeout",
                    "the request body did not arrive within " + std::to_string(static_cast<long>(deadline_s)) +
                        " s of its headers");
  if (parts > kMaxParts)
    throw HttpError(400, "too_many_fields",
                    "the form has more than " + std::to_string(kMaxParts) + " fields; send image, boxes, outputs, background");
  if (!ok) throw HttpError(400, "bad_request", "malformed HTTP request or multipart body, or the client stopped sending");
  return full;
}

/// httplib serves each connection on one thread of its task queue, for as long as the connection
/// is open. A fixed pool lets a few hundred idle or slow clients take every thread, so /healthz
/// and real requests wait behind them. This queue starts a thread whenever a connection arrives
/// and none is free, up to `max_threads`; combined with short keep-alive and read timeouts, slow
/// clients only ever cost a thread each, never the server's answers.
class ConnectionThreads : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(std::size_t max_threads) : max_(max_threads) {}
  ~ConnectionThreads() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(fn));
    if (jobs_.size() > waiting_ && threads_.size() < max_) threads_.emplace_back([this] { run(); });
    cv_.notify_one();
  }

  void shutdown() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ++waiting_;
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        --waiting_;
        if (jobs_.empty()) return;  // stopping, nothing left
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
    }
  }

  const std::size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  std::size_t waiting_ = 0;
  bool stop_ = false;
};

/// httplib binds with SO_REUSEPORT, so a second server on a taken port would silently share it
/// with the first. A plain bind first turns that into a clear error.
void check_port_free(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  SEMAT_CHECK(rc == 0 && found, IoError, "--host " << host << " is not a usable address: " << gai_strerror(rc));
  const int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  int err = 0;
  if (fd >= 0) {
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // TIME_WAIT is not "in use"
    if (bind(fd, found->ai_addr, found->ai_addrlen) != 0) err = errno;
    close(fd);
  }
  freeaddrinfo(found);
  SEMAT_CHECK(err == 0, IoError,
              "cannot listen on " << host << ":" << port << ": " << std::strerror(err)
                                  << (err == EADDRINUSE ? " (another server uses it; pick another --port or 0)" : ""));
}

/// libcpp-httplib 0.11 listens with a backlog of 5, so a burst of connections (a page load, a
/// few hundred clients) overflows it and the kernel drops SYNs, which clients retry only after
/// 1 s, 3 s... httplib does not expose its socket: find the listening socket on `port` among our
/// descriptors and listen() again, which on Linux only raises the backlog.
void raise_listen_backlog(int port) {
  for (int fd = 3; fd < 4096; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    const int bound = addr.ss_family == AF_INET    ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
                      : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                                   : -1;
    if (bound == port) ::listen(fd, SOMAXCONN);
  }
}

}  // namespace

void validate(const ServerOptions& o) {
  SEMAT_CHECK(o.port >= 0 && o.port <= 65535, ConfigError, "--port " << o.port << " must be in 0..65535");
  SEMAT_CHECK(o.max_upload_mb >= 1 && o.max_upload_mb <= 4096, ConfigError,
              "--max-upload-mb " << o.max_upload_mb << " must be in 1..4096");
  SEMAT_CHECK(o.max_pixels >= 1, ConfigError, "--max-pixels must be at least 1");
  SEMAT_CHECK(o.workers >= 0 && o.workers <= 256, ConfigError, "--workers " << o.workers << " must be in 0..256");
  SEMAT_CHECK(o.queue >= 0 && o.queue <= 10000, ConfigError, "--queue " << o.queue << " must be in 0..10000");
  SEMAT_CHECK(o.image_ttl_s >= 1, ConfigError, "--image-ttl must be at least 1 second");
  SEMAT_CHECK(o.max_store_mb >= 1, ConfigError, "--max-store-mb must be at least 1");
  SEMAT_CHECK(o.request_timeout_s > 0, ConfigError, "--timeout must be positive");
  SEMAT_CHECK(o.body_timeout_s > 0, ConfigError, "the body timeout must be positive");
  SEMAT_CHECK(o.header_timeout_s > 0, ConfigError, "the header timeout must be positive");
  SEMAT_CHECK(o.drain_timeout_s >= 0, ConfigError, "the drain timeout must not be negative");
  SEMAT_CHECK(o.max_boxes >= 1, ConfigError, "--max-boxes must be at least 1");
  std::error_code ec;
  SEMAT_CHECK(o.web_root.empty() || std::filesystem::is_directory(o.web_root, ec), ConfigError,
              "--web-root '" << o.web_root << "' is not a folder");
}

struct Server::Impl {
  Impl(const ServerOptions& o, std::shared_ptr<const engine::Engine> e)
      : options(o),
        workers(o.workers > 0 ? o.workers : std::max(1u, std::thread::hardware_concurrency())),
        engine(std::move(e)),
        store(static_cast<std::size_t>(o.max_store_mb) << 20, std::chrono::seconds(o.image_ttl_s),
              [this](const std::string& id) { engine->forget(id); }),
        queue(workers, o.queue),
        http(HeaderLimits{kMaxHeaderBytes, kMaxHeaders, static_cast<double>(kIdleTimeoutS), o.header_timeout_s}) {}

  void setup_routes();
  httplib::Server::Handler api(std::function<void(const httplib::Request&, httplib::Response&)> fn);
  /// api() for a request with a body: `fn` sees the request with its body read (read_body).
  httplib::Server::HandlerWithContentReader api_with_body(
      std::function<void(const httplib::Request&, httplib::Response&)> fn);
  template <class T>
  T run_job(std::function<T()> fn);
  MatteAnswer matte(const cv::Mat& image, const std::string& key, const MatteParams& p);
  void answer_matte(const MatteAnswer& a, const MatteParams& p, httplib::Response& res);
  void serve_asset(const std::string& name, httplib::Response& res);
  json info() const;

  const ServerOptions options;
  const int workers;
  std::shared_ptr<const engine::Engine> engine;
  ImageStore store;
  WorkQueue queue;
  GuardedServer http;  // httplib::Server with the header phase bounded (header_guard.h)
  int port = -1;
  std::thread listener, janitor;

  std::atomic<bool> draining{false};
  std::mutex mu;  // guards the fields below; cv signals their changes
  std::condition_variable cv;
  int inflight = 0;
  bool started = false, shutting_down = false, stopped = false;
  double drain_timeout_s = options.drain_timeout_s;
};

httplib::Server::Handler Server::Impl::api(
    std::function<void(const httplib::Request&, httplib::Response&)> fn) {
  return [this, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++inflight;
    }
    try {
      if (draining) throw HttpError(503, "shutting_down", "the server is shutting down", 5);
      fn(req, res);
    } catch (const HttpError& e) {
      send_error(res, e.status(), e.code(), e.what());
      if (e.retry_after_s() > 0) res.set_header("Retry-After", std::to_string(e.retry_after_s()));
    } catch (const DataError& e) {
      send_error(res, 422, "unusable_input", e.what());
    } catch (const InvalidArgument& e) {
      send_error(res, 400, "invalid_argument", e.what());
    } catch (const IoError& e) {
      send_error(res, 400, "corrupt_image", e.what());
    } catch (const std::bad_alloc&) {
      SEMAT_LOG_ERROR(kTag, req.method << " " << req.path << ": out of memory");
      send_error(res, 503, "out_of_memory", "the server ran out of memory for this request");
    } catch (const std::exception& e) {
      SEMAT_LOG_ERROR(kTag, req.method << " " << req.path << ": internal error: " << e.what());
      send_error(res, 500, "internal", std::string("internal error: ") + e.what());
    } catch (...) {
      send_error(res, 500, "internal", "internal error");
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      --inflight;
    }
    cv.notify_all();
  };
}

httplib::Server::HandlerWithContentReader Server::Impl::api_with_body(
    std::function<void(const httplib::Request&, httplib::Response&)> fn) {
  const std::uint64_t max_body = static_cast<std::uint64_t>(options.max_upload_mb) << 20;
  return [this, fn = std::move(fn), max_body](const httplib::Request& req, httplib::Response& res,
                                              const httplib::ContentReader& reader) {
    api([&](const httplib::Request& head, httplib::Response& out) {
      fn(read_body(head, out, reader, max_body, options.max_upload_mb, options.body_timeout_s), out);
    })(req, res);
  };
}

template <class T>
T Server::Impl::run_job(std::function<T()> fn) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> result = promise->get_future();
  auto job = queue.try_submit([promise, fn = std::move(fn)] {
    try {
      promise->set_value(fn());
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  if (!job)
    throw HttpError(503, "overloaded",
                    "the server is busy (" + std::to_string(workers) + " workers, queue of " +
                        std::to_string(options.queue) + " full): retry in a moment",
                    1);
  const auto deadline = t_request_start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(options.request_timeout_s));
  if (result.wait_until(deadline) != std::future_status::ready) {
    // A job that has not started is skipped; one already running finishes and is thrown away,
    // since the matting solvers cannot be interrupted midway.
    job->cancelled = true;
    throw HttpError(503, "timeout", "the request took longer than the server's limit of " +
                                        std::to_string(options.request_timeout_s) + " s");
  }
  return result.get();
}

MatteAnswer Server::Impl::matte(const cv::Mat& image, const std::string& key, const MatteParams& p) {
  Timer t;
  std::vector<engine::Prompt> prompts;
  for (std::size_t i = 0; i < p.boxes.size(); ++i)
    prompts.push_back(engine::Prompt::from_box(p.boxes[i], "boxes[" + std::to_string(i) + "]"));
  const std::vector<matting::MatteResult> results = engine->run(image, prompts, key);
  const Merged merged = merge(results);
  MatteAnswer a;
  for (const std::string& name : p.outputs) a.pngs.emplace_back(name, render(name, image, merged, p));
  json instances = json::array();
  for (const auto& r : results) {
    json inst = {{"omega", r.omega}, {"unknown_pixels", r.solve.unknown}, {"seconds", r.seconds}};
    if (r.box) inst["box"] = {r.box->x0, r.box->y0, r.box->x1, r.box->y1};
    instances.push_back(inst);
  }
  a.report = {{"width", image.cols}, {"height", image.rows}, {"method", engine->description()},
              {"engine", engine->description()}, {"model", engine->model_variant()},
              {"instances", instances}, {"seconds", t.seconds()}};
  return a;
}

void Server::Impl::answer_matte(const MatteAnswer& a, const MatteParams& p, httplib::Response& res) {
  if (p.png) {
    const auto& png = a.pngs.front().second;
    res.status = 200;
    res.set_content(std::string(png.begin(), png.end()), "image/png");
    res.set_header("X-Semat-Output", a.pngs.front().first);
    return;
  }
  json body = a.report;
  json outputs = json::object();
  for (const auto& [name, png] : a.pngs) outputs[name] = base64(png);
  body["outputs"] = std::move(outputs);
  // With a charset parameter httplib does not compress: base64 PNGs barely shrink, and its
  // brotli runs at quality 11, which costs ~0.8 s per megabyte.
  res.status = 200;
  res.set_content(dump_answer(body), "application/json; charset=utf-8");
}

json Server::Impl::info() const {
  return {{"name", "semat"},
          {"version", SEMAT_SERVE_VERSION},
          {"method", engine->description()},
          {"engine", engine->description()},
          {"model", engine->model_variant()},
          {"precision", engine->precision()},
          {"outputs", all_outputs()},
          {"formats", {"png", "jpeg", "webp"}},
          {"limits",
           {{"max_upload_mb", options.max_upload_mb},
            {"max_pixels", options.max_pixels},
            {"max_boxes", options.max_boxes},
            {"workers", workers},
            {"queue", options.queue},
            {"image_ttl_s", options.image_ttl_s},
            {"max_store_mb", options.max_store_mb},
            {"request_timeout_s", options.request_timeout_s}}},
          {"load",
           {{"running", queue.running()},
            {"waiting", queue.waiting()},
            {"stored_images", store.size()},
            {"stored_mb", static_cast<double>(store.bytes()) / (1 << 20)}}}};
}

void Server::Impl::serve_asset(const std::string& name, httplib::Response& res) {
  // Only plain file names: no folders, no dot files, so --web-root cannot be escaped.
  static const std::regex kSafe("[A-Za-z0-9_-][A-Za-z0-9_.-]*");
  if (!std::regex_match(name, kSafe)) throw HttpError(404, "not_found", "no such page: /" + name);
  std::string body;
  if (!options.web_root.empty()) {
    // Symlinks are resolved and the file must still lie inside --web-root, so a link in the
    // folder cannot serve files from elsewhere; only regular files are read.
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path root = fs::canonical(options.web_root, ec);
    const fs::path file = ec ? fs::path() : fs::canonical(root / name, ec);
    const bool inside = !ec && file.parent_path() == root && fs::is_regular_file(file, ec);
    if (!inside) throw HttpError(404, "not_found", "no such page: /" + name);
    std::ifstream in(file, std::ios::binary);
    if (!in) throw HttpError(404, "not_found", "no such page: /" + name);
    body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    res.set_header("Cache-Control", "no-store");
  } else {
    const web::Asset* a = web::find_embedded(name);
    if (!a) throw HttpError(404, "not_found", "no such page: /" + name);
    body.assign(reinterpret_cast<const char*>(a->data), a->size);
  }
  // The page talks only to this server; the policy makes the browser enforce that it stays offline.
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.status = 200;
  res.set_content(body, content_type_for(name).c_str());
}

void Server::Impl::setup_routes() {
  const int max_boxes = options.max_boxes;
  const long long max_pixels = options.max_pixels;

  http.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    if (draining) {
      send_json(res, 503, {{"status", "shutting_down"}});
      res.set_header("Retry-After", "5");
    } else {
      send_json(res, 200, {{"status", "ok"}});
    }
  });
  http.Get("/v1/info", api([this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, info()); }));

  http.Post("/v1/matte", api_with_body([this, max_boxes, max_pixels](const httplib::Request& req, httplib::Response& res) {
    if (!req.is_multipart_form_data())
      throw HttpError(415, "unsupported_media_type",
                      "POST /v1/matte takes multipart/form-data with 'image' and 'boxes' fields");
    const std::string& bytes = image_bytes(req);
    const MatteParams p = params_from_form(req, max_boxes);
    const ImageHeader h = probe_upload(bytes, max_pixels);
    check_boxes_in_image(p.boxes, h.width, h.height);
    const MatteAnswer a = run_job<MatteAnswer>([this, data = own_bytes(bytes), h, p] {
      return matte(decode_upload(*data, h), "", p);
    });
    answer_matte(a, p, res);
  }));

  http.Post("/v1/images", api_with_body([this, max_pixels](const httplib::Request& req, httplib::Response& res) {
    const std::string& bytes = image_bytes(req);
    const ImageHeader h = probe_upload(bytes, max_pixels);
    const std::string id = run_job<std::string>([this, data = own_bytes(bytes), h] {
      const cv::Mat image = decode_upload(*data, h);
      try {
        return store.put(image);
      } catch (const InvalidArgument& e) {
        throw HttpError(413, "image_too_large", e.what());
      }
    });
    send_json(res, 201, {{"id", id}, {"width", h.width}, {"height", h.height}, {"format", h.format},
                         {"expires_after_s", options.image_ttl_s}});
    res.set_header("Location", "/v1/images/" + id);
  }));

  auto stored = [this](const std::string& id) {
    std::optional<cv::Mat> image = store.get(id);
    if (!image)
      throw HttpError(404, "image_not_found", "no image with id '" + id +
                                                  "': it expired, was deleted or never existed; upload it again");
    return *image;
  };

  http.Get(R"(/v1/images/([^/]+))", api([stored](const httplib::Request& req, httplib::Response& res) {
    const cv::Mat image = stored(req.matches[1]);
    send_json(res, 200, {{"id", req.matches[1]}, {"width", image.cols}, {"height", image.rows}});
  }));

  http.Post(R"(/v1/images/([^/]+)/matte)",
            api_with_body([this, stored, max_boxes](const httplib::Request& req, httplib::Response& res) {
              const std::string id = req.matches[1];
              const MatteParams p =
                  req.is_multipart_form_data() ? params_from_form(req, max_boxes) : params_from_json(req, max_boxes);
              const cv::Mat image = stored(id);
              check_boxes_in_image(p.boxes, image.cols, image.rows);
              MatteAnswer a = run_job<MatteAnswer>([this, image, id, p] { return matte(image, id, p); });
              a.report["image_id"] = id;
              answer_matte(a, p, res);
            }));

  http.Delete(R"(/v1/images/([^/]+))", api_with_body([this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (!store.erase(id)) throw HttpError(404, "image_not_found", "no image with id '" + id + "'");
    res.status = 204;
  }));

  // Every other request that may carry a body: httplib would read that body whole (a chunked
  // one without limit) before answering 404, so it is answered here, unread.
  auto no_endpoint = [](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader&) {
    send_error(res, 404, "not_found", "no such endpoint: " + req.method + " " + io::printable_prefix(req.path, 200));
  };
  http.Post(".*", no_endpoint);
  http.Put(".*", no_endpoint);
  http.Patch(".*", no_endpoint);
  http.Delete(".*", no_endpoint);

  http.Get("/", api([this](const httplib::Request&, httplib::Response& res) { serve_asset("index.html", res); }));
  http.Get(R"(/([^/]+))", api([this](const httplib::Request& req, httplib::Response& res) {
    serve_asset(req.matches[1], res);
  }));

  // Limits checked once the headers are read and before any body is: the answer goes out at
  // once and the connection closes (one request per connection), the body is never read.
  const std::uint64_t max_body = static_cast<std::uint64_t>(options.max_upload_mb) << 20;
  const int max_upload = options.max_upload_mb;
  http.set_pre_routing_handler([max_body, max_upload](const httplib::Request& req, httplib::Response& res) {
    t_request_start = Clock::now();
    // httplib adds REMOTE_ADDR, REMOTE_PORT, LOCAL_ADDR and LOCAL_PORT to the headers it read.
    if (req.headers.size() > kMaxHeaders + 4) {
      send_error(res, 431, "headers_too_large",
                 "the request has more than " + std::to_string(kMaxHeaders) + " header fields");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.has_header("Transfer-Encoding")) {
      // A chunked body is counted as it arrives (read_body). Any other coding, or a length given
      // both ways (a request-smuggling pattern), is refused unread.
      const std::string te = req.get_header_value("Transfer-Encoding");
      if (strcasecmp(te.c_str(), "chunked") != 0 || req.has_header("Content-Length") ||
          req.get_header_value_count("Transfer-Encoding") != 1) {
        send_error(res, 400, "bad_request",
                   "Transfer-Encoding '" + io::printable_prefix(te) +
                       "' is not accepted: send the body with a Content-Length or as chunked (without a Content-Length)");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (req.has_header("Content-Length")) {
      const std::string v = req.get_header_value("Content-Length");
      const bool digits = !v.empty() && v.size() <= 19 && std::all_of(v.begin(), v.end(), ::isdigit);
      if (!digits) {
        send_error(res, 400, "bad_request", "malformed Content-Length");
        return httplib::Server::HandlerResponse::Handled;
      }
      // A body over the limit is normally read and thrown away by httplib (never stored), so the
      // client, still sending, gets its 413 instead of a reset connection. A declared length far
      // beyond the limit is answered at once: reading it would tie up the connection for long.
      if (std::stoull(v) > 4 * max_body + (std::uint64_t{1} << 20)) {
        send_error(res, 413, "upload_too_large",
                   "the request body is larger than the server's limit of " + std::to_string(max_upload) +
                       " MiB (--max-upload-mb)");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Statuses set by httplib itself (413 over --max-upload-mb, 400 malformed HTTP, 404 no route)
  // arrive here without a body; give them the same JSON shape as ours.
  const int max_upload_mb = options.max_upload_mb;
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [max_upload_mb](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    switch (res.status) {
      case 413:
        send_error(res, 413, "upload_too_large",
                   "the request body is larger than the server's limit of " + std::to_string(max_upload_mb) +
                       " MiB (--max-upload-mb)");
        break;
      case 404: send_error(res, 404, "not_found", "no such endpoint: " + req.method + " " + req.path); break;
      case 400: send_error(res, 400, "bad_request", "malformed HTTP request or multipart body"); break;
      default: send_error(res, res.status, "http_" + std::to_string(res.status), "HTTP error " + std::to_string(res.status));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, 500, "internal", "internal error");
  });
  http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t_request_start).count();
    SEMAT_LOG_INFO(kTag, req.remote_addr << " \"" << req.method << " " << req.path << "\" " << res.status << " "
                                         << res.body.size() << " B " << static_cast<long>(ms + 0.5) << " ms");
  });
}

Server::Server(const ServerOptions& options, std::shared_ptr<const engine::Engine> engine) {
  validate(options);
  SEMAT_CHECK(engine != nullptr, ConfigError, "the server needs a matting engine");
  impl_ = std::make_unique<Impl>(options, std::move(engine));
  Impl& s = *impl_;
  // Connection threads mostly wait for workers; enough of them that a full queue, not a lack of
  // threads, is what refuses work, plus some for /healthz, the page and idle keep-alive
  // connections (each holds a thread while open).
  s.http.new_task_queue = [] { return new ConnectionThreads(kMaxConnectionThreads); };
  s.http.set_payload_max_length(static_cast<std::size_t>(options.max_upload_mb) << 20);
  // One request per connection: a request refused before its body is read (413, 400) must not
  // leave that body to be parsed as the next request, and idle keep-alive connections then hold
  // no thread. Idle clients are dropped after the keep-alive timeout, stalled ones after the read
  // timeout (per read; the body as a whole within body_timeout_s: read_body).
  s.http.set_keep_alive_max_count(1);
  s.http.set_keep_alive_timeout(kIdleTimeoutS);
  s.http.set_read_timeout(kReadTimeoutS, 0);
  s.http.set_write_timeout(kReadTimeoutS, 0);
  // Without it, small answers wait ~40 ms for Nagle's algorithm and the client's delayed ACK.
  s.http.set_tcp_nodelay(true);
  s.setup_routes();
}

Server::~Server() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->drain_timeout_s = 0;
  }
  shutdown();
}

void Server::start() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    SEMAT_CHECK(!s.started, StateError, "Server::start called twice");
    s.started = true;
  }
  // A client that disconnects mid-response must not kill the process: httplib writes with plain
  // send(), which raises SIGPIPE on a closed socket.
  std::signal(SIGPIPE, SIG_IGN);
  const std::string& host = s.options.host;
  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(host);
  } else {
    check_port_free(host, s.options.port);
    s.port = s.http.bind_to_port(host, s.options.port) ? s.options.port : -1;
  }
  SEMAT_CHECK(s.port > 0, IoError,
              "cannot listen on " << host << ":" << s.options.port
                                  << " (address in use, or not an address of this machine)");
  raise_listen_backlog(s.port);
  s.listener = std::thread([&s] { s.http.listen_after_bind(); });
  s.janitor = std::thread([&s] {
    std::unique_lock<std::mutex> lock(s.mu);
    while (!s.stopped && !s.draining) {
      s.cv.wait_for(lock, std::chrono::seconds(1));
      lock.unlock();
      s.store.sweep();
      lock.lock();
    }
  });
  for (int i = 0; i < 5000 && !s.http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  SEMAT_LOG_INFO(kTag, "listening on http://" << host << ":" << s.port << "/ (" << s.workers << " workers, queue "
                                              << s.options.queue << ", engine " << s.engine->description() << ")");
}

int Server::port() const { return impl_->port; }

void Server::shutdown() {
  Impl& s = *impl_;
  {
    std::unique_lock<std::mutex> lock(s.mu);
    if (!s.started) {
      s.stopped = true;
      return;
    }
    if (s.shutting_down) {  // another thread is draining: wait for it
      s.cv.wait(lock, [&s] { return s.stopped; });
      return;
    }
    s.shutting_down = true;
    s.draining = true;
    const auto limit = std::chrono::duration<double>(s.drain_timeout_s);
    if (!s.cv.wait_for(lock, limit, [&s] { return s.inflight == 0; }))
      SEMAT_LOG_WARN(kTag, "drain: " << s.inflight << " requests still running after " << s.drain_timeout_s
                                     << " s; closing anyway");
  }
  s.cv.notify_all();
  s.http.stop();
  if (s.listener.joinable()) s.listener.join();
  if (s.janitor.joinable()) s.janitor.join();
  s.queue.shutdown();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.stopped = true;
  }
  s.cv.notify_all();
  SEMAT_LOG_INFO(kTag, "stopped");
}

void Server::wait() {
  Impl& s = *impl_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.cv.wait(lock, [&s] { return s.stopped; });
}

}  // namespace semat::serve
