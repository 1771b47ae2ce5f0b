// semat serve [--host 127.0.0.1] [--port 8080] [engine flags: --sam, --semat, --refine, ...]
//             [--max-upload-mb 25] [--max-pixels 40000000] [--workers N] [--queue 16]
//             [--image-ttl S] [--web-root DIR]
#include <pthread.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "engine_flags.h"
#include "semat/core/error.h"
#include "semat/core/log.h"
#include "semat/engine/engine.h"
#include "semat/serve/server.h"

namespace semat::cli {
namespace {

struct ServeArgs {
  serve::ServerOptions server;
  engine::EngineSpec engine;
};

void run_serve(const ServeArgs& a) {
  // Block the stop signals in every thread the server will start, and take them synchronously
  // here: a handler could not safely drain the server.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (a.server.host != "127.0.0.1" && a.server.host != "localhost" && a.server.host != "::1")
    SEMAT_LOG_WARN("serve", "--host " << a.server.host
                                      << " is not a loopback address: the API has no authentication");
  // One engine for every worker: models are loaded here, once.
  serve::Server server(a.server, std::make_shared<const engine::Engine>(a.engine));
  server.start();
  // Scripts (and the browser test) read the URL from stdout to find a --port 0 server.
  std::cout << "semat: serving http://" << a.server.host << ":" << server.port() << "/" << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  SEMAT_LOG_INFO("serve", (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ": draining in-flight requests");
  server.shutdown();
}

}  // namespace

void register_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  serve::ServerOptions& o = a->server;
  CLI::App* cmd = app.add_subcommand("serve", "HTTP API and web page for interactive matting");
  cmd->add_option("--host", o.host, "address to listen on (keep it loopback: there is no authentication)")
      ->capture_default_str();
  cmd->add_option("--port", o.port, "TCP port; 0 picks a free one")->capture_default_str();
  add_engine_flags(cmd, a->engine);
  cmd->add_option("--max-upload-mb", o.max_upload_mb, "largest request body in MiB")->capture_default_str();
  cmd->add_option("--max-pixels", o.max_pixels, "largest image (width x height), checked before decoding")
      ->capture_default_str();
  cmd->add_option("--workers", o.workers, "matting threads (0: one per CPU core)")->capture_default_str();
  cmd->add_option("--queue", o.queue, "requests that may wait for a worker before 503")->capture_default_str();
  cmd->add_option("--image-ttl", o.image_ttl_s, "seconds an uploaded image lives after its last use")
      ->capture_default_str();
  cmd->add_option("--max-store-mb", o.max_store_mb, "memory for uploaded images in MiB (LRU eviction)")
      ->capture_default_str();
  cmd->add_option("--timeout", o.request_timeout_s, "seconds one request may take before 503")
      ->capture_default_str();
  cmd->add_option("--body-timeout", o.body_timeout_s, "seconds a request body may take to arrive before 408")
      ->capture_default_str();
  cmd->add_option("--header-timeout", o.header_timeout_s, "seconds a request's headers may take to arrive before 408")
      ->capture_default_str();
  cmd->add_option("--max-boxes", o.max_boxes, "largest number of boxes per request")->capture_default_str();
  cmd->add_option("--web-root", o.web_root, "serve the web page from this folder (live editing) instead of the built-in copy");
  cmd->callback([a] { run_serve(*a); });
}

}  // namespace semat::cli
