#include "http_conn.h"

#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice::cp {

http_conn::http_conn(int fd, clock::time_point deadline) : fd_(fd), deadline_(deadline) {
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

http_conn::~http_conn() {
  if (fd_ >= 0)
    ::close(fd_);
}

http_conn::http_conn(http_conn&& o) noexcept
    : fd_(o.fd_), deadline_(o.deadline_), in_(std::move(o.in_)), out_(std::move(o.out_)),
      sent_(o.sent_), answering_(o.answering_) {
  o.fd_ = -1;
}

short http_conn::poll_events() const {
  return answering_ ? POLLOUT : POLLIN;
}

void http_conn::answer(const std::function<std::string()>& metrics_body) {
  std::string status = "404 Not Found", body = "not found\n";
  if (in_.rfind("GET /metrics ", 0) == 0 || in_.rfind("GET /metrics?", 0) == 0) {
    try {
      body = metrics_body();
      status = "200 OK";
    } catch (const std::exception& e) {
      status = "500 Internal Server Error";
      body = fmt::format("metrics failed: {}\n", e.what());
    }
  } else if (in_.find("\r\n\r\n") == std::string::npos && in_.find("\n\n") == std::string::npos) {
    status = "400 Bad Request";
    body = fmt::format("request header larger than {} bytes\n", max_request_bytes);
  }
  out_ = fmt::format("HTTP/1.0 {}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                     "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                     status, body.size(), body);
  answering_ = true;
}

bool http_conn::on_ready(const std::function<std::string()>& metrics_body) {
  if (!answering_) {
    char buf[2048];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return true; // wait for more
      if (n <= 0)
        return false; // peer left before finishing its request
      in_.append(buf, size_t(n));
      if (in_.find("\r\n\r\n") != std::string::npos || in_.find("\n\n") != std::string::npos ||
          in_.size() >= max_request_bytes)
        break;
    }
    answer(metrics_body);
  }
  while (sent_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + sent_, out_.size() - sent_, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return true;
    if (n <= 0)
      return false;
    sent_ += size_t(n);
  }
  return false; // answered
}

} // namespace sluice::cp
