// The header phase of every connection, bounded before cpp-httplib reads it (issue #14).
//
// httplib 0.11.4 caps each header line at 8 KiB but neither their number nor the time they take:
// it reads every header into memory before any handler (even the pre-routing one) can refuse
// them, and a client sending one byte per read timeout keeps its connection thread forever.
// GuardedServer checks the header phase on the socket itself, with recv(MSG_PEEK) under a
// deadline, before httplib reads a byte: the whole header section (request line to the blank
// line) must arrive within `header_timeout_s` of the connection's first byte waiting (else 408),
// hold at most `max_header_bytes` bytes and `max_headers` header lines (else 431). Peeked bytes
// stay in the socket, so httplib then parses the request as usual.
#pragma once

#include <httplib.h>

#include <cstddef>
#include <functional>

namespace semat::serve {

/// What the header phase of one connection came to.
enum class HeaderPhase {
  kComplete,  // the blank line arrived within the limits
  kTooLarge,  // over max_header_bytes or max_headers (431)
  kTimeout,   // started but not finished within the deadline (408)
  kClosed,    // idle past the idle timeout, closed by the peer, a socket error, or server stop
};

struct HeaderLimits {
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_headers = 64;    // header lines, the request line not counted
  double idle_timeout_s = 5;       // for the first byte (a silent connection is closed, no answer)
  double header_timeout_s = 10;    // for the whole header section, from the connection's start
};

/// Watches `sock` (peeking only, never consuming) until its header section is complete or a
/// limit is crossed. `stop` (may be empty) is asked every 50 ms: true ends the watch (kClosed).
HeaderPhase watch_header_phase(int sock, const HeaderLimits& limits, const std::function<bool()>& stop);

/// httplib::Server with the header phase checked first. One request per connection (the
/// server's keep_alive_max_count is 1): each request gets its own checked header phase.
class GuardedServer : public httplib::Server {
 public:
  explicit GuardedServer(const HeaderLimits& limits) : limits_(limits) {}

 private:
  // Overrides httplib's private virtual (legal: access does not restrict overriding). It does
  // what the base does for one request (wait for the client, run the protected
  // process_request() on a socket stream, shut the socket down and close it) with the header
  // check in front; the stream is ours, since httplib's SocketStream is not in its header.
  bool process_and_close_socket(socket_t sock) override;

  HeaderLimits limits_;
};

}  // namespace semat::serve
