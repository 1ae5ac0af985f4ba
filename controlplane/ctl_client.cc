#include "ctl_client.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace sluice::ctl {

namespace {

// How long sluicectl waits for an answer: a change waits for every worker's
// acknowledgement (the daemon bounds that itself), so this only guards
// against a hung daemon. SLUICECTL_TIMEOUT_S overrides it (1..3600).
int answer_timeout_s() {
  if (const char* e = std::getenv("SLUICECTL_TIMEOUT_S")) {
    const int v = std::atoi(e);
    if (v >= 1 && v <= 3600)
      return v;
  }
  return 30;
}

constexpr int connect_timeout_ms = 5000;

} // namespace

api_client::~api_client() {
  if (fd_ >= 0)
    ::close(fd_);
}

result<void> api_client::connect() {
  if (fd_ >= 0)
    return {};
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path_.size() >= sizeof sa.sun_path)
    return make_error("socket path too long: " + path_);
  std::memcpy(sa.sun_path, path_.c_str(), path_.size() + 1);
  // Non-blocking connect: a daemon whose accept queue is full (hung, or out
  // of descriptors) must not hang the CLI.
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  // A Unix socket's connect fails with EAGAIN while the backlog is full:
  // retried until the deadline.
  int rc = -1;
  for (int waited_ms = 0; fd_ >= 0; waited_ms += 50) {
    rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (rc == 0 || errno != EAGAIN)
      break;
    if (waited_ms >= connect_timeout_ms) {
      errno = ETIMEDOUT;
      break;
    }
    ::poll(nullptr, 0, 50);
  }
  if (rc != 0) {
    auto e = make_error(fmt::format("cannot connect to the control plane at {}: {}{}", path_,
                                    std::strerror(errno),
                                    errno == ETIMEDOUT ? " (it does not accept connections: "
                                                         "hung or out of file descriptors?)"
                                                       : ""));
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
    return e;
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  timeval rcv{answer_timeout_s(), 0}, snd{connect_timeout_ms / 1000, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
  return {};
}

result<nlohmann::json> api_client::call_raw(nlohmann::json req) {
  if (auto c = connect(); !c)
    return c.err();
  req["version"] = 1;
  const std::string line = req.dump() + "\n";
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return make_error(fmt::format("cannot send to {}: {}", path_, std::strerror(errno)));
    done += size_t(n);
  }
  for (;;) {
    if (auto nl = pending_.find('\n'); nl != std::string::npos) {
      std::string answer = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      try {
        return nlohmann::json::parse(answer);
      } catch (const nlohmann::json::exception& e) {
        return make_error(std::string("malformed answer from the control plane: ") + e.what());
      }
    }
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return make_error(
          fmt::format("no answer from the control plane at {}{}", path_,
                      n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                          ? fmt::format(" within {} s (SLUICECTL_TIMEOUT_S)", answer_timeout_s())
                      : n < 0 ? std::string(": ") + std::strerror(errno)
                              : ""));
    pending_.append(buf, size_t(n));
  }
}

result<nlohmann::json> api_client::call(nlohmann::json req) {
  auto a = call_raw(std::move(req));
  if (!a)
    return a;
  if (!a->value("ok", false))
    return make_error(a->value("error", std::string("request failed")));
  return a;
}

} // namespace sluice::ctl
