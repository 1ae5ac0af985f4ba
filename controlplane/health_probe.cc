#include "health_probe.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health_http.h"

namespace sluice::cp {

namespace {

constexpr size_t max_answer = 64 * 1024;

socklen_t to_sockaddr(const ip_addr& a, uint16_t port, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (a.is_v4()) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    std::memcpy(&s4->sin_addr, a.v4_ptr(), 4);
    return sizeof(sockaddr_in);
  }
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(port);
  std::memcpy(&s6->sin6_addr, a.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

std::string kind_word(const health_config& c) {
  return std::string(check_kind_name(c.kind));
}

} // namespace

int64_t steady_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

prober::prober(clock_fn clock, uint64_t seed) : clock_(std::move(clock)), rng_(seed) {}

prober::~prober() {
  for (auto& [id, s] : slots_)
    close_fd(s);
  if (ep_ >= 0)
    ::close(ep_);
}

result<void> prober::init() {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0)
    return make_error(fmt::format("epoll_create1: {}", std::strerror(errno)));
  return {};
}

int64_t prober::jittered(const health_config& c) {
  const int64_t base = int64_t(c.interval_ms) * 1000000;
  if (c.jitter_pct == 0)
    return base;
  const int64_t span = base * int64_t(c.jitter_pct) / 100;
  std::uniform_int_distribution<int64_t> d(-span, span);
  return std::max<int64_t>(1000000, base + d(rng_));
}

void prober::schedule(int64_t at, uint32_t id) {
  heap_.emplace(at, id);
}

void prober::set_targets(std::vector<probe_target> targets) {
  std::map<uint32_t, slot> next;
  const int64_t now = clock_();
  for (auto& t : targets) {
    auto it = slots_.find(t.id);
    if (it != slots_.end() && it->second.t.addr == t.addr && it->second.t.port == t.port &&
        it->second.t.cfg == t.cfg) {
      next.emplace(t.id, std::move(it->second));
      slots_.erase(it);
      continue;
    }
    slot s;
    s.t = std::move(t);
    std::uniform_int_distribution<int64_t> d(0, int64_t(s.t.cfg.interval_ms) * 1000000);
    s.next_due = now + d(rng_);
    schedule(s.next_due, s.t.id);
    next.emplace(s.t.id, std::move(s));
  }
  for (auto& [id, s] : slots_)
    close_fd(s); // removed or changed: their heap entries go stale
  slots_ = std::move(next);
  // Rebuild the heap when stale entries dominate it.
  if (heap_.size() > 4 * slots_.size() + 64) {
    decltype(heap_) fresh;
    for (auto& [id, s] : slots_)
      fresh.emplace(s.ph == phase::idle ? s.next_due : s.deadline, id);
    heap_ = std::move(fresh);
  }
}

void prober::close_fd(slot& s) {
  // Also when socket() failed (fd -1, e.g. EMFILE): the slot must go back to
  // idle, or it would stay "in flight" and never be checked again.
  if (s.fd >= 0) {
    linger l{1, 0}; // RST on close: no TIME_WAIT per check
    ::setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(s.fd); // also leaves the epoll set
    s.fd = -1;
  }
  if (s.ph != phase::idle)
    --in_flight_;
  s.ph = phase::idle;
  s.buf.clear();
}

void prober::finish(slot& s, bool ok, std::string reason, int64_t now,
                    std::vector<probe_outcome>& out) {
  const int64_t latency = now - s.started;
  close_fd(s);
  out.push_back(
      {s.t.id, ok, std::move(reason), uint32_t(std::max<int64_t>(0, latency) / 1000), now});
  s.next_due = std::max(s.next_due, now);
  schedule(s.next_due, s.t.id);
}

void prober::start(slot& s, int64_t now, std::vector<probe_outcome>& out) {
  const auto& c = s.t.cfg;
  s.started = now;
  // From the due time, not from now: a start delayed by the millisecond
  // granularity of epoll_wait must not stretch every interval (unless the
  // check is a whole interval late, then the schedule restarts from now).
  const int64_t interval_ns = int64_t(c.interval_ms) * 1000000;
  s.next_due = (s.next_due > now - interval_ns ? s.next_due : now) + jittered(c);
  s.deadline = now + int64_t(c.timeout_ms) * 1000000;
  const bool udp = c.kind == check_kind::udp;
  sockaddr_storage dst;
  socklen_t dlen = to_sockaddr(s.t.addr, c.port ? c.port : s.t.port, dst);
  s.fd =
      ::socket(dst.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  s.ph = phase::connecting;
  ++in_flight_;
  if (s.fd < 0)
    return finish(s, false, fmt::format("socket: {}", std::strerror(errno)), now, out);
  if (c.source) {
    sockaddr_storage src;
    socklen_t slen = to_sockaddr(*c.source, 0, src);
    if (::bind(s.fd, reinterpret_cast<sockaddr*>(&src), slen) != 0)
      return finish(s, false,
                    fmt::format("bind {}: {}", format_ip(*c.source), std::strerror(errno)), now,
                    out);
  }
  int rc = ::connect(s.fd, reinterpret_cast<sockaddr*>(&dst), dlen);
  if (rc != 0 && errno != EINPROGRESS)
    return finish(s, false, fmt::format("{} connect: {}", kind_word(c), std::strerror(errno)), now,
                  out);
  epoll_event ev{};
  ev.data.u32 = s.t.id;
  ev.events = udp ? EPOLLIN : EPOLLOUT;
  if (::epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev) != 0)
    return finish(s, false, fmt::format("epoll_ctl: {}", std::strerror(errno)), now, out);
  schedule(s.deadline, s.t.id);
  if (udp) {
    s.ph = phase::udp_waiting;
    if (::send(s.fd, c.send.data(), c.send.size(), 0) < 0)
      return finish(s, false, fmt::format("udp send: {}", std::strerror(errno)), now, out);
  }
}

void prober::on_connected(slot& s, int64_t now, std::vector<probe_outcome>& out) {
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
  const auto& c = s.t.cfg;
  if (err != 0)
    return finish(s, false, fmt::format("{} connect: {}", kind_word(c), std::strerror(err)), now,
                  out);
  if (c.kind == check_kind::tcp)
    return finish(s, true, "tcp connect ok", now, out);
  // fmt rather than "[" + ... + "]": GCC 12 at -O3 reports a false
  // -Wrestrict on the string concatenation.
  const std::string host = !c.host.empty()    ? c.host
                           : s.t.addr.is_v4() ? format_ip(s.t.addr)
                                              : fmt::format("[{}]", format_ip(s.t.addr));
  const std::string req = fmt::format(
      "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: sluice-health\r\nConnection: close\r\n\r\n",
      c.path, host);
  ssize_t n = ::send(s.fd, req.data(), req.size(), MSG_NOSIGNAL);
  if (n != ssize_t(req.size()))
    return finish(s, false, fmt::format("http send: {}", n < 0 ? std::strerror(errno) : "short"),
                  now, out);
  epoll_event ev{};
  ev.data.u32 = s.t.id;
  ev.events = EPOLLIN | EPOLLRDHUP;
  ::epoll_ctl(ep_, EPOLL_CTL_MOD, s.fd, &ev);
  s.ph = phase::http_reading;
}

void prober::on_readable(slot& s, int64_t now, std::vector<probe_outcome>& out) {
  const auto& c = s.t.cfg;
  char tmp[4096];
  if (s.ph == phase::udp_waiting) {
    ssize_t n = ::recv(s.fd, tmp, sizeof tmp, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return;
      return finish(s, false,
                    errno == ECONNREFUSED ? std::string("udp port unreachable")
                                          : fmt::format("udp recv: {}", std::strerror(errno)),
                    now, out);
    }
    std::string_view reply(tmp, size_t(n));
    if (c.expect.empty() || reply.find(c.expect) != std::string_view::npos)
      return finish(s, true, "udp reply ok", now, out);
    return finish(s, false, "udp reply does not match", now, out);
  }
  for (;;) {
    ssize_t n = ::recv(s.fd, tmp, sizeof tmp, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        break;
      return finish(s, false, fmt::format("http recv: {}", std::strerror(errno)), now, out);
    }
    if (n == 0) {
      auto v = http_verdict(s.buf, c, true);
      return finish(s, v->ok, v->reason, now, out);
    }
    s.buf.append(tmp, size_t(n));
    if (s.buf.size() >= max_answer)
      break;
  }
  if (auto v = http_verdict(s.buf, c, s.buf.size() >= max_answer))
    return finish(s, v->ok, v->reason, now, out);
}

void prober::on_event(slot& s, uint32_t events, int64_t now, std::vector<probe_outcome>& out) {
  if (s.ph == phase::connecting)
    return on_connected(s, now, out);
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
    on_readable(s, now, out);
}

void prober::run_once(int max_wait_ms, std::vector<probe_outcome>& out) {
  int64_t now = clock_();
  int wait = max_wait_ms;
  if (!heap_.empty()) {
    const int64_t until = heap_.top().first - now;
    wait = until <= 0 ? 0 : int(std::min<int64_t>(max_wait_ms, (until + 999999) / 1000000));
  }
  epoll_event evs[256];
  int n = ::epoll_wait(ep_, evs, 256, wait);
  now = clock_();
  for (int i = 0; i < n; ++i) {
    auto it = slots_.find(evs[i].data.u32);
    if (it != slots_.end() && it->second.fd >= 0)
      on_event(it->second, evs[i].events, now, out);
  }
  while (!heap_.empty() && heap_.top().first <= now) {
    auto [at, id] = heap_.top();
    heap_.pop();
    auto it = slots_.find(id);
    if (it == slots_.end())
      continue;
    slot& s = it->second;
    if (s.ph == phase::idle && at == s.next_due) {
      start(s, now, out);
    } else if (s.ph != phase::idle && at == s.deadline) {
      const char* what =
          s.ph == phase::connecting && s.t.cfg.kind != check_kind::udp ? "connect " : "";
      finish(s, false,
             fmt::format("{} {}timeout ({} ms)", kind_word(s.t.cfg), what, s.t.cfg.timeout_ms), now,
             out);
    }
  }
}

} // namespace sluice::cp
