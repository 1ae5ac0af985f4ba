// The active-check engine: every check is a non-blocking socket driven by one
// epoll set, and every due time and deadline sits in one min-heap, so a single
// thread runs thousands of concurrent checks (docs/performance.md has the
// figure). Checks of one backend never overlap: the next starts `interval`
// (with jitter) after the previous one started, or when it finished if it
// overran.
//
// Trade-offs: TCP and HTTP checks close with SO_LINGER 0 (an RST, no
// TIME_WAIT), so 10,000 checks per second do not exhaust local ports; a
// backend logging half-open resets is the price. HTTP is HTTP/1.0 with
// `Connection: close`, one request per connection, and at most 64 KiB of the
// answer is read.
//
// Owning thread: one (the health thread); the clock is injected so tests can
// drive timeouts without sleeping.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "health_config.h"
#include "ip_addr.h"
#include "result.h"

namespace sluice::cp {

using clock_fn = std::function<int64_t()>; // monotonic nanoseconds

int64_t steady_now_ns();

struct probe_target {
  uint32_t id = 0; // chosen by the caller, unique
  ip_addr addr;
  uint16_t port = 0;
  health_config cfg; // kind != none
};

struct probe_outcome {
  uint32_t id = 0;
  bool ok = false;
  std::string reason; // "http status 503", "tcp connect timeout (1000 ms)", "ok"
  uint32_t latency_us = 0;
  int64_t at_ns = 0;
};

class prober {
public:
  explicit prober(clock_fn clock = steady_now_ns, uint64_t seed = 1);
  ~prober();
  prober(const prober&) = delete;
  prober& operator=(const prober&) = delete;

  result<void> init();
  // Replaces the target set. Targets whose id and parameters are unchanged
  // keep their schedule and any check in flight; others start afresh, their
  // first check spread over one interval.
  void set_targets(std::vector<probe_target> targets);
  // Waits up to `max_wait_ms` for socket events or the next due time, then
  // starts due checks, finishes ready ones and expires overdue ones, appending
  // each finished check to `out`.
  void run_once(int max_wait_ms, std::vector<probe_outcome>& out);

  size_t in_flight() const { return in_flight_; }
  size_t targets() const { return slots_.size(); }

private:
  enum class phase : uint8_t { idle, connecting, http_reading, udp_waiting };
  struct slot {
    probe_target t;
    phase ph = phase::idle;
    int fd = -1;
    int64_t next_due = 0, started = 0, deadline = 0;
    std::string buf;
  };

  void start(slot& s, int64_t now, std::vector<probe_outcome>& out);
  void on_event(slot& s, uint32_t events, int64_t now, std::vector<probe_outcome>& out);
  void on_connected(slot& s, int64_t now, std::vector<probe_outcome>& out);
  void on_readable(slot& s, int64_t now, std::vector<probe_outcome>& out);
  void finish(slot& s, bool ok, std::string reason, int64_t now, std::vector<probe_outcome>& out);
  void close_fd(slot& s);
  void schedule(int64_t at, uint32_t id);
  int64_t jittered(const health_config& c);

  clock_fn clock_;
  std::mt19937_64 rng_;
  int ep_ = -1;
  std::map<uint32_t, slot> slots_;
  using entry = std::pair<int64_t, uint32_t>;
  std::priority_queue<entry, std::vector<entry>, std::greater<>> heap_;
  size_t in_flight_ = 0;
};

} // namespace sluice::cp
