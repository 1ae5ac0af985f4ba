// Health-check engine benchmark (scripts/bench-health.sh): one prober thread
// checks N backends (distinct 127.x.y.z addresses, one listener on the
// wildcard address answering HTTP from its own thread) every interval, for a
// few seconds; reports checks per second against the target, failures, the
// prober thread's CPU time and the check latency (median, p99).
//
// usage: sluice-health-bench [--backends N] [--interval-ms MS] [--seconds S] [--kind tcp|http]
#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "health_probe.h"

using namespace sluice;
using namespace sluice::cp;

namespace {

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// Accepts and answers every connection (HTTP 200) until `stop`.
void serve(int lfd, const std::atomic<bool>& stop) {
  static const char answer[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
  char buf[1024];
  while (!stop.load()) {
    int c = ::accept(lfd, nullptr, nullptr);
    if (c < 0)
      continue;
    timeval tv{0, 200000};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::recv(c, buf, sizeof buf, 0) > 0)
      (void)!::send(c, answer, sizeof answer - 1, MSG_NOSIGNAL);
    ::close(c);
  }
}

} // namespace

int main(int argc, char** argv) {
  int backends = 1000, interval_ms = 100, seconds = 5;
  std::string kind = "tcp";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--backends")
      backends = std::atoi(argv[i + 1]);
    else if (a == "--interval-ms")
      interval_ms = std::atoi(argv[i + 1]);
    else if (a == "--seconds")
      seconds = std::atoi(argv[i + 1]);
    else if (a == "--kind")
      kind = argv[i + 1];
  }
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 4096) != 0) {
    std::perror("listen");
    return 1;
  }
  socklen_t l = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &l);
  const uint16_t port = ntohs(a.sin_port);
  timeval tv{0, 100000};
  ::setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::atomic<bool> stop{false};
  std::thread srv(serve, lfd, std::cref(stop));

  health_config h;
  h.kind = kind == "http" ? check_kind::http : check_kind::tcp;
  h.interval_ms = uint32_t(interval_ms);
  h.timeout_ms = 1000;
  std::vector<probe_target> ts;
  for (int i = 0; i < backends; ++i) {
    const uint32_t ip = (127u << 24) | (1u << 16) | uint32_t(i + 1); // 127.1.x.y
    ts.push_back({uint32_t(i + 1), ip_addr::from_v4_be(htonl(ip)), port, h});
  }
  prober p;
  if (auto r = p.init(); !r) {
    std::fprintf(stderr, "%s\n", r.error_message().c_str());
    return 1;
  }
  p.set_targets(ts);
  std::vector<probe_outcome> out;
  // Warm-up: one interval (first checks are spread over it).
  const int64_t t_warm = steady_now_ns() + int64_t(interval_ms) * 1000000;
  while (steady_now_ns() < t_warm)
    p.run_once(10, out);
  out.clear();
  const double cpu0 = thread_cpu_s();
  const int64_t t0 = steady_now_ns(), t_end = t0 + int64_t(seconds) * 1000000000;
  size_t max_in_flight = 0;
  while (steady_now_ns() < t_end) {
    p.run_once(10, out);
    max_in_flight = std::max(max_in_flight, p.in_flight());
  }
  const double wall = double(steady_now_ns() - t0) / 1e9, cpu = thread_cpu_s() - cpu0;
  stop = true;
  srv.join();
  ::close(lfd);
  size_t fails = 0;
  std::vector<uint32_t> lat;
  for (const auto& o : out) {
    fails += o.ok ? 0 : 1;
    lat.push_back(o.latency_us);
  }
  std::sort(lat.begin(), lat.end());
  const double target = double(backends) * 1000.0 / interval_ms;
  std::printf("kind=%s backends=%d interval_ms=%d seconds=%.1f checks=%zu rate=%.0f/s "
              "target=%.0f/s (%.1f%%) failures=%zu max_in_flight=%zu prober_cpu=%.1f%% "
              "latency_us p50=%u p99=%u\n",
              kind.c_str(), backends, interval_ms, wall, out.size(), double(out.size()) / wall,
              target, 100.0 * double(out.size()) / wall / target, fails, max_in_flight,
              100.0 * cpu / wall, lat.empty() ? 0 : lat[lat.size() / 2],
              lat.empty() ? 0 : lat[lat.size() * 99 / 100]);
  if (fails) {
    for (const auto& o : out)
      if (!o.ok) {
        std::printf("first failure: %s\n", o.reason.c_str());
        break;
      }
  }
  return 0;
}
