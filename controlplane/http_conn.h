// One Prometheus scrape (GET /metrics, HTTP/1.0, one request per connection)
// served without ever blocking the event loop: the socket is non-blocking,
// the request is read as bytes arrive and the answer written as the peer
// takes it, all within one deadline per connection. A client that trickles
// bytes (or never reads) costs one slot and a few KiB until its deadline,
// never the loop's time: health checks, ticks and the API keep running.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace sluice::cp {

class http_conn {
public:
  using clock = std::chrono::steady_clock;
  static constexpr size_t max_request_bytes = 8192;

  // Takes ownership of `fd` (made non-blocking here).
  http_conn(int fd, clock::time_point deadline);
  ~http_conn();
  http_conn(http_conn&& o) noexcept;
  http_conn& operator=(http_conn&&) = delete;
  http_conn(const http_conn&) = delete;

  int fd() const { return fd_; }
  short poll_events() const; // POLLIN while reading the request, POLLOUT while answering
  clock::time_point deadline() const { return deadline_; }
  // Reads or writes what the socket allows; false once the exchange is over
  // (answered, failed or the peer left): the caller drops the connection.
  bool on_ready(const std::function<std::string()>& metrics_body);

private:
  void answer(const std::function<std::string()>& metrics_body);
  int fd_ = -1;
  clock::time_point deadline_;
  std::string in_, out_;
  size_t sent_ = 0;
  bool answering_ = false;
};

} // namespace sluice::cp
