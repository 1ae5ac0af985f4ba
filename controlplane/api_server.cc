#include "api_server.h"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace sluice::cp {

namespace {

volatile std::sig_atomic_t stop_requested = 0;
void on_signal(int) {
  stop_requested = 1;
}

error sys_error(const std::string& what) {
  return make_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

void set_timeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

bool send_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += size_t(n);
  }
  return true;
}

result<int> listen_unix(const std::string& path) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty())
    std::filesystem::create_directories(dir, ec);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path)
    return make_error(fmt::format("socket path too long: {}", path));
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return sys_error("socket");
  ::unlink(path.c_str()); // stale: the instance lock says no other control plane runs
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::chmod(path.c_str(), 0660) != 0 || ::listen(fd, 16) != 0) {
    auto e = sys_error("cannot listen on " + path);
    ::close(fd);
    return e;
  }
  return fd;
}

result<int> listen_tcp(const std::string& addr) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    return make_error(fmt::format("--metrics: expected HOST:PORT, got '{}'", addr));
  std::string host = addr.substr(0, colon);
  if (host.size() > 1 && host.front() == '[')
    host = host.substr(1, host.size() - 2);
  const int port = std::atoi(addr.c_str() + colon + 1);
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(uint16_t(port));
    len = sizeof *s4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(uint16_t(port));
    len = sizeof *s6;
  } else {
    return make_error(fmt::format("--metrics: '{}' is not an IP address", host));
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return sys_error("socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 16) != 0) {
    auto e = sys_error("cannot listen on " + addr);
    ::close(fd);
    return e;
  }
  return fd;
}

// One HTTP exchange, bounded by socket timeouts: GET /metrics or 404.
void serve_http(int fd, const server_hooks& hooks) {
  set_timeouts(fd, 1000);
  std::string req;
  char buf[2048];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 8192) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    req.append(buf, size_t(n));
  }
  std::string status = "404 Not Found", body = "not found\n";
  if (req.rfind("GET /metrics ", 0) == 0 || req.rfind("GET /metrics?", 0) == 0) {
    status = "200 OK";
    body = hooks.metrics();
  }
  send_all(fd, fmt::format("HTTP/1.0 {}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                           "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                           status, body.size(), body));
  ::close(fd);
}

} // namespace

result<void> serve(const server_options& opts, const server_hooks& hooks) {
  auto api = listen_unix(opts.socket_path);
  if (!api)
    return api.err();
  int metrics_fd = -1;
  if (opts.metrics_addr != "off") {
    auto m = listen_tcp(opts.metrics_addr);
    if (!m) {
      ::close(api.value());
      return m.err();
    }
    metrics_fd = m.value();
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::map<int, std::string> clients; // fd -> bytes read but not yet a full line
  while (!stop_requested) {
    std::vector<pollfd> fds{{api.value(), POLLIN, 0}};
    if (metrics_fd >= 0)
      fds.push_back({metrics_fd, POLLIN, 0});
    for (auto& [fd, _] : clients)
      fds.push_back({fd, POLLIN, 0});
    int n = ::poll(fds.data(), fds.size(), opts.tick_ms);
    hooks.tick();
    if (n <= 0)
      continue;
    for (const auto& p : fds) {
      if (!p.revents)
        continue;
      if (p.fd == api.value()) {
        int c = ::accept4(p.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          set_timeouts(c, 5000);
          clients[c];
        }
      } else if (p.fd == metrics_fd) {
        int c = ::accept4(p.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0)
          serve_http(c, hooks);
      } else {
        char buf[65536];
        ssize_t r = ::recv(p.fd, buf, sizeof buf, 0);
        auto& pending = clients[p.fd];
        bool close_it = r <= 0;
        if (r > 0)
          pending.append(buf, size_t(r));
        for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
          std::string line = pending.substr(0, nl);
          pending.erase(0, nl + 1);
          if (line.find_first_not_of(" \t\r") == std::string::npos)
            continue;
          if (hooks.request_peer) {
            ucred cred{};
            socklen_t len = sizeof cred;
            const bool got = ::getsockopt(p.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
            hooks.request_peer(got ? int(cred.uid) : -1, got ? int(cred.pid) : -1);
          }
          if (!send_all(p.fd, hooks.handle_line(line) + "\n"))
            close_it = true;
        }
        if (pending.size() > (16u << 20))
          close_it = true; // no line in 16 MiB: not a client of ours
        if (close_it) {
          ::close(p.fd);
          clients.erase(p.fd);
        }
      }
    }
  }
  for (auto& [fd, _] : clients)
    ::close(fd);
  ::close(api.value());
  if (metrics_fd >= 0)
    ::close(metrics_fd);
  ::unlink(opts.socket_path.c_str());
  return {};
}

} // namespace sluice::cp
