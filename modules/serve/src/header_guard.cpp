#include "header_guard.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "semat/core/log.h"

namespace semat::serve {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kTag = "serve";

// SO_RCVLOWAT set for the watch and put back to 1 (the default) whatever happens: httplib's
// reads must not wait for a low-water mark.
class LowWater {
 public:
  explicit LowWater(int sock) : sock_(sock) {}
  ~LowWater() { set(1); }
  void set(int bytes) {
    if (bytes == now_) return;
    if (::setsockopt(sock_, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes) == 0) now_ = bytes;
  }

 private:
  int sock_;
  int now_ = 1;
};

// httplib's SocketStream is compiled into Debian's libcpp-httplib and not declared in its header:
// the same behaviour here (per-read and per-write timeouts, a small read buffer for the line
// reader's one-byte reads, MSG_NOSIGNAL writes).
class SocketStream final : public httplib::Stream {
 public:
  SocketStream(int sock, time_t rs, time_t ru, time_t ws, time_t wu)
      : sock_(sock), read_ms_(static_cast<int>(rs * 1000 + ru / 1000)), write_ms_(static_cast<int>(ws * 1000 + wu / 1000)) {}

  bool is_readable() const override { return pos_ < len_ || wait(POLLIN, read_ms_); }
  bool is_writable() const override { return wait(POLLOUT, write_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ < len_) return take(ptr, size);
    if (!wait(POLLIN, read_ms_)) return -1;
    if (size >= sizeof buf_) return recv_some(ptr, size);
    const ssize_t n = recv_some(buf_, sizeof buf_);
    if (n <= 0) return n;
    pos_ = 0;
    len_ = static_cast<std::size_t>(n);
    return take(ptr, size);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    for (;;) {
      const ssize_t n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      return n;
    }
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(false, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  bool wait(short what, int ms) const {
    pollfd p{sock_, what, 0};
    for (;;) {
      const int r = ::poll(&p, 1, ms);
      if (r < 0 && errno == EINTR) continue;
      return r > 0;
    }
  }
  ssize_t recv_some(char* ptr, size_t size) {
    for (;;) {
      const ssize_t n = ::recv(sock_, ptr, size, 0);
      if (n < 0 && errno == EINTR) continue;
      return n;
    }
  }
  ssize_t take(char* ptr, size_t size) {
    const std::size_t n = std::min(size, len_ - pos_);
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  void address(bool remote, std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    auto* sa = reinterpret_cast<sockaddr*>(&a);
    if ((remote ? ::getpeername(sock_, sa, &len) : ::getsockname(sock_, sa, &len)) != 0) return;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (::getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) return;
    ip = host;
    port = std::atoi(serv);
  }

  int sock_;
  int read_ms_, write_ms_;
  char buf_[4096];
  std::size_t pos_ = 0, len_ = 0;
};

// A lingering close: the write side shut, what the client still sends read and dropped for a
// bounded time (1 s, 4 MiB), so that closing with unread bytes (a TCP reset) cannot destroy an
// answer the client has not read yet: a 413 sent while the client is still uploading.
void linger_close(int sock) {
  ::shutdown(sock, SHUT_WR);
  char drop[16384];
  std::size_t dropped = 0;
  const auto drain_end = Clock::now() + std::chrono::seconds(1);
  while (dropped < (std::size_t{4} << 20) && Clock::now() < drain_end) {
    pollfd p{sock, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(sock, drop, sizeof drop, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;  // the client closed (or an error): done
    dropped += static_cast<std::size_t>(n);
  }
}

// A refusal written straight to the socket (httplib has not read the request), in the API's
// error format, then a lingering close.
void refuse(int sock, int status, const char* reason, const char* code, const std::string& message) {
  const std::string body = std::string("{\"error\":{\"code\":\"") + code + "\",\"message\":\"" + message + "\"}}";
  const std::string answer = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                             "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\nConnection: close\r\n\r\n" + body;
  std::size_t sent = 0;
  const auto send_end = Clock::now() + std::chrono::seconds(1);
  while (sent < answer.size() && Clock::now() < send_end) {
    pollfd p{sock, POLLOUT, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::send(sock, answer.data() + sent, answer.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
  linger_close(sock);
}

std::string seconds(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%g s", s);
  return b;
}

}  // namespace

HeaderPhase watch_header_phase(int sock, const HeaderLimits& limits, const std::function<bool()>& stop) {
  const auto start = Clock::now();
  auto after = [&](double s) { return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
  const auto idle_end = after(std::min(limits.idle_timeout_s, limits.header_timeout_s));
  const auto end = after(limits.header_timeout_s);
  // One byte more than allowed tells "over the limit" from "exactly at it".
  std::vector<char> buf(limits.max_header_bytes + 1);
  LowWater low_water(sock);
  std::size_t seen = 0;
  for (;;) {
    if (stop && stop()) return HeaderPhase::kClosed;
    const auto now = Clock::now();
    const auto deadline = seen == 0 ? idle_end : end;
    if (now >= deadline) return seen == 0 ? HeaderPhase::kClosed : HeaderPhase::kTimeout;
    const auto left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    pollfd p{sock, static_cast<short>(POLLIN | POLLRDHUP), 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(50, left_ms)));
    if (r < 0 && errno != EINTR) return HeaderPhase::kClosed;
    if (r <= 0) continue;
    if (p.revents & (POLLERR | POLLNVAL)) return HeaderPhase::kClosed;
    const ssize_t n = ::recv(sock, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return HeaderPhase::kClosed;  // closed before sending anything
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return HeaderPhase::kClosed;
    }
    const std::size_t len = static_cast<std::size_t>(n);
    // Lines as httplib's reader splits them (at '\n'); the header section ends at the first
    // line that is exactly "\r\n" after the request line.
    std::size_t lines = 0, line_start = 0;
    for (std::size_t i = 0; i < len; ++i) {
      if (buf[i] != '\n') continue;
      if (lines > 0 && i == line_start + 1 && buf[line_start] == '\r') return HeaderPhase::kComplete;
      ++lines;
      line_start = i + 1;
      if (lines > limits.max_headers + 1) return HeaderPhase::kTooLarge;
    }
    if (len > limits.max_header_bytes) return HeaderPhase::kTooLarge;
    if (p.revents & POLLRDHUP) return HeaderPhase::kClosed;  // the client stopped sending, unfinished
    if (len == seen) {
      // No new byte although poll said readable (a low-water mark the kernel did not honour):
      // do not spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    seen = len;
    // Wake up only when more than what was examined has arrived.
    low_water.set(static_cast<int>(len + 1));
  }
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  bool ret = false;
  const HeaderPhase phase = watch_header_phase(sock, limits_, [this] { return svr_sock_ == INVALID_SOCKET; });
  if (phase == HeaderPhase::kComplete) {
    SocketStream strm(sock, read_timeout_sec_, read_timeout_usec_, write_timeout_sec_, write_timeout_usec_);
    bool closed = false;
    ret = process_request(strm, /*close_connection=*/true, closed, nullptr);
    // An answer given before the whole body was read (413, 408, 404 for an unknown POST) leaves
    // bytes unread, some maybe still in flight: close lingering, or the reset may reach the client
    // before the answer does. A client that has sent everything reads the answer, sees the end of
    // the stream and closes, which ends the linger at once.
    linger_close(sock);
  } else if (phase == HeaderPhase::kTooLarge) {
    SEMAT_LOG_INFO(kTag, "431: a request's header section is over " << limits_.max_header_bytes << " bytes or "
                                                                    << limits_.max_headers << " fields");
    refuse(sock, 431, "Request Header Fields Too Large", "headers_too_large",
           "the request's header section is over " + std::to_string(limits_.max_header_bytes) + " bytes or " +
               std::to_string(limits_.max_headers) + " header fields");
  } else if (phase == HeaderPhase::kTimeout) {
    SEMAT_LOG_INFO(kTag, "408: a request's headers did not arrive within " << limits_.header_timeout_s << " s");
    refuse(sock, 408, "Request Timeout", "request_timeout",
           "the request's headers did not arrive within " + seconds(limits_.header_timeout_s));
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

}  // namespace semat::serve
