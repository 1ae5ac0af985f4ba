#include "api_server.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
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

#include "http_conn.h"

namespace sluice::cp {

namespace {

using clock = std::chrono::steady_clock;

volatile std::sig_atomic_t stop_requested = 0;
volatile std::sig_atomic_t reload_requested = 0;
void on_stop(int) {
  stop_requested = 1;
}
void on_hup(int) {
  reload_requested = 1;
}

error sys_error(const std::string& what) {
  return make_error(fmt::format("{}: {}", what, std::strerror(errno)));
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
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return sys_error("socket");
  ::unlink(path.c_str()); // stale: the instance lock says no other control plane runs
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::chmod(path.c_str(), 0660) != 0 || ::listen(fd, 64) != 0) {
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
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return sys_error("socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 64) != 0) {
    auto e = sys_error("cannot listen on " + addr);
    ::close(fd);
    return e;
  }
  return fd;
}

// An API client: bytes read but not yet a full line, and answers not yet
// taken by the peer.
struct api_conn {
  int fd = -1;
  std::string in, out;
  size_t sent = 0;
  clock::time_point last_active;
  bool closing = false; // close once `out` is flushed
};

class event_loop {
public:
  event_loop(const server_options& o, const server_hooks& h, int api_fd, int metrics_fd)
      : o_(o), h_(h), api_fd_(api_fd), metrics_fd_(metrics_fd),
        reserve_fd_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}
  ~event_loop() {
    for (auto& [fd, _] : api_)
      ::close(fd);
    if (reserve_fd_ >= 0)
      ::close(reserve_fd_);
  }

  void run() {
    while (!stop_requested) {
      if (reload_requested) {
        reload_requested = 0;
        if (h_.reload)
          h_.reload();
        else
          log("SIGHUP: nothing to reload");
      }
      std::vector<pollfd> fds;
      const auto now = clock::now();
      if (now >= accept_paused_until_) {
        fds.push_back({api_fd_, POLLIN, 0});
        if (metrics_fd_ >= 0)
          fds.push_back({metrics_fd_, POLLIN, 0});
      }
      for (auto& [fd, c] : api_) {
        short ev = c.sent < c.out.size() ? POLLOUT : 0;
        if (!c.closing && c.out.size() - c.sent < o_.max_request_bytes)
          ev |= POLLIN; // back-pressure: no new requests while answers pile up
        fds.push_back({fd, ev, 0});
      }
      for (auto& [fd, c] : http_)
        fds.push_back({fd, c.poll_events(), 0});
      int n = ::poll(fds.data(), fds.size(), o_.tick_ms);
      if (h_.tick)
        h_.tick();
      if (n > 0)
        for (const auto& p : fds)
          if (p.revents)
            on_event(p);
      expire();
    }
  }

private:
  void log(const std::string& m) {
    if (h_.log)
      h_.log(m);
  }

  // accept4, and at the descriptor limit: release the reserve descriptor,
  // accept and close the newcomer (it sees EOF instead of hanging in the
  // backlog), take the reserve back. Without a reserve, accepting pauses for
  // 100 ms: never a busy loop on EMFILE.
  int accept_one(int lfd) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c >= 0 || (errno != EMFILE && errno != ENFILE))
      return c;
    const auto now = clock::now();
    if (now - last_emfile_log_ > std::chrono::seconds(10)) {
      last_emfile_log_ = now;
      log(fmt::format("out of file descriptors ({}): refusing new clients until some close",
                      std::strerror(errno)));
    }
    if (reserve_fd_ >= 0) {
      ::close(reserve_fd_);
      int shed = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (shed >= 0)
        ::close(shed);
      reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (reserve_fd_ < 0)
      accept_paused_until_ = now + std::chrono::milliseconds(100);
    return -1;
  }

  void on_event(const pollfd& p) {
    if (p.fd == api_fd_) {
      int c = accept_one(p.fd);
      if (c < 0)
        return;
      if (api_.size() >= o_.max_api_clients) {
        const std::string msg = fmt::format(
            "{{\"version\":1,\"ok\":false,\"error\":\"too many API clients (limit {}); try "
            "again\"}}\n",
            o_.max_api_clients);
        ::send(c, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(c);
        return;
      }
      api_[c] = api_conn{c, {}, {}, 0, clock::now(), false};
      return;
    }
    if (p.fd == metrics_fd_) {
      int c = accept_one(p.fd);
      if (c < 0)
        return;
      if (http_.size() >= o_.max_http_clients) {
        ::close(c); // scrapes are retried; the slots belong to the ones in progress
        return;
      }
      http_.emplace(c, http_conn(c, clock::now() + std::chrono::milliseconds(o_.http_deadline_ms)));
      return;
    }
    if (auto it = http_.find(p.fd); it != http_.end()) {
      if (!it->second.on_ready(h_.metrics))
        http_.erase(it);
      return;
    }
    auto it = api_.find(p.fd);
    if (it == api_.end())
      return;
    if (!on_api(it->second, p.revents)) {
      buffered_ -= it->second.in.size();
      ::close(it->first);
      api_.erase(it);
    }
  }

  // False: drop the client.
  bool on_api(api_conn& c, short revents) {
    if (revents & POLLIN) {
      char buf[65536];
      ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        r = -2;
      if (r == 0 || r == -1)
        return false;
      if (r > 0) {
        c.in.append(buf, size_t(r));
        buffered_ += size_t(r);
        c.last_active = clock::now();
      }
      for (auto nl = c.in.find('\n'); nl != std::string::npos && !c.closing; nl = c.in.find('\n')) {
        std::string line = c.in.substr(0, nl);
        c.in.erase(0, nl + 1);
        buffered_ -= nl + 1;
        if (line.find_first_not_of(" \t\r") == std::string::npos)
          continue;
        if (h_.request_peer) {
          ucred cred{};
          socklen_t len = sizeof cred;
          const bool got = ::getsockopt(c.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
          h_.request_peer(got ? int(cred.uid) : -1, got ? int(cred.pid) : -1);
        }
        c.out += answer(line);
        if (h_.tick)
          h_.tick();
      }
      if (c.in.size() > o_.max_request_bytes || buffered_ > o_.max_buffered_bytes) {
        c.out += fmt::format("{{\"version\":1,\"ok\":false,\"error\":\"{}\"}}\n",
                             c.in.size() > o_.max_request_bytes
                                 ? fmt::format("request longer than {} bytes without a newline",
                                               o_.max_request_bytes)
                                 : std::string("the control plane holds too many unanswered "
                                               "bytes; try again"));
        buffered_ -= c.in.size();
        c.in.clear();
        c.closing = true;
      }
    } else if (revents & (POLLHUP | POLLERR | POLLNVAL)) {
      if (!(revents & POLLOUT))
        return false;
    }
    while (c.sent < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (n <= 0)
        return false;
      c.sent += size_t(n);
      c.last_active = clock::now();
    }
    if (c.sent == c.out.size()) {
      c.out.clear();
      c.sent = 0;
      if (c.closing)
        return false;
    }
    return true;
  }

  std::string answer(const std::string& line) {
    try {
      return h_.handle_line(line) + "\n";
    } catch (const std::exception& e) {
      log(fmt::format("request failed: {}", e.what()));
    } catch (...) {
      log("request failed");
    }
    return "{\"version\":1,\"ok\":false,\"error\":\"internal error (see the control plane's "
           "log)\"}\n";
  }

  void expire() {
    const auto now = clock::now();
    for (auto it = http_.begin(); it != http_.end();)
      it = now >= it->second.deadline() ? http_.erase(it) : std::next(it);
    const auto idle = std::chrono::milliseconds(o_.api_idle_ms);
    for (auto it = api_.begin(); it != api_.end();) {
      if (now - it->second.last_active > idle) {
        buffered_ -= it->second.in.size();
        ::close(it->first);
        it = api_.erase(it);
      } else {
        ++it;
      }
    }
  }

  const server_options& o_;
  const server_hooks& h_;
  int api_fd_, metrics_fd_, reserve_fd_;
  std::map<int, api_conn> api_;
  std::map<int, http_conn> http_;
  size_t buffered_ = 0; // sum of api_[*].in sizes
  clock::time_point accept_paused_until_{}, last_emfile_log_{};
};

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
      ::unlink(opts.socket_path.c_str());
      return m.err();
    }
    metrics_fd = m.value();
  }
  // No SA_RESTART: a signal interrupts poll() so it is seen at once.
  struct sigaction stop {
  }, hup{};
  stop.sa_handler = on_stop;
  hup.sa_handler = on_hup;
  ::sigaction(SIGTERM, &stop, nullptr);
  ::sigaction(SIGINT, &stop, nullptr);
  ::sigaction(SIGHUP, &hup, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  {
    event_loop loop(opts, hooks, api.value(), metrics_fd);
    loop.run();
  }
  ::close(api.value());
  if (metrics_fd >= 0)
    ::close(metrics_fd);
  ::unlink(opts.socket_path.c_str());
  return {};
}

} // namespace sluice::cp
