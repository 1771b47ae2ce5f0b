// `semat serve` as a library: an HTTP API for matting plus the embedded web page, on one
// cpp-httplib server. Tests start it in-process on 127.0.0.1 port 0.
//
//   semat::serve::ServerOptions o;            // port 0 picks a free port
//   auto engine = std::make_shared<semat::engine::Engine>(semat::engine::EngineSpec{});
//   semat::serve::Server server(o, engine);   // every matte goes through the shared engine
//   server.start();                           // returns once it accepts connections
//   ... http://127.0.0.1:<server.port()>/v1/matte ...
//   server.shutdown();                        // drains in-flight requests, then stops
//
// Heavy work (decoding, matting, encoding) runs on --workers threads fed by a bounded queue;
// connection threads only parse, validate and wait, so a full queue answers 503 at once.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "semat/engine/engine.h"

namespace semat::serve {

struct ServerOptions {
  /// Interface to bind. Anything but a loopback address exposes the server to the network.
  std::string host = "127.0.0.1";
  /// TCP port, 0..65535; 0 picks a free one (see Server::port()).
  int port = 8080;
  /// Largest request body in MiB (1..4096); larger uploads get 413 before being read whole (a
  /// chunked body: as soon as its data crosses the limit).
  int max_upload_mb = 25;
  /// Largest image in pixels (width * height, >= 1); checked from the file header before decoding.
  long long max_pixels = 40'000'000;
  /// Matting threads (>= 1). 0 means the number of hardware threads.
  int workers = 0;
  /// Jobs that may wait for a worker (>= 0); beyond that requests get 503 with Retry-After.
  int queue = 16;
  /// Seconds a stored image (/v1/images) lives after its last use (>= 1).
  int image_ttl_s = 600;
  /// Memory for stored images in MiB (>= 1); the least recently used are evicted beyond it.
  int max_store_mb = 1024;
  /// Seconds one request may wait for and run its job (> 0); then 503 with code "timeout".
  double request_timeout_s = 120;
  /// Seconds a request body may take to arrive, from the end of its headers (> 0); a slower
  /// upload is cut off with 408, so slow clients cannot hold a connection thread for long.
  double body_timeout_s = 60;
  /// Seconds a request's header section (request line to blank line) may take to arrive, from
  /// the moment the connection is served (> 0); a slower one gets 408. Connections that send
  /// nothing are closed after 5 s without an answer.
  double header_timeout_s = 10;
  /// Seconds shutdown() waits for in-flight requests before closing anyway (>= 0).
  double drain_timeout_s = 30;
  /// Largest number of boxes in one request (>= 1).
  int max_boxes = 16;
  /// Serve the web page from this folder instead of the copy compiled into the binary (for live
  /// editing); empty uses the embedded files.
  std::string web_root;
};

/// Throws ConfigError naming the flag for out-of-range values.
void validate(const ServerOptions& options);

class Server {
 public:
  /// `engine` must not be null; its models are loaded already and shared by every worker (a
  /// box request with no model configured never touches LibTorch). Throws ConfigError for
  /// invalid options.
  Server(const ServerOptions& options, std::shared_ptr<const engine::Engine> engine);
  ~Server();  ///< shutdown() with no drain wait if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and starts serving on a background thread; returns once connections are accepted.
  /// Throws IoError when the address cannot be bound (port taken, bad host).
  void start();
  /// The bound port (the real one when options.port was 0); valid after start().
  int port() const;
  /// Stops accepting new work (503 "shutting_down", /healthz 503), waits up to drain_timeout_s for
  /// in-flight requests, then closes the listener and joins all threads. Idempotent and safe to
  /// call from any thread except a request handler.
  void shutdown();
  /// Blocks until shutdown() has completed.
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semat::serve
