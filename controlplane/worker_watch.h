// Dataplane liveness as the control plane sees it: every worker stores a
// CLOCK_MONOTONIC heartbeat in its ack line on each loop iteration, so a live
// worker whose heartbeat is older than a threshold is stuck (a hung driver, a
// livelock, a stopped lcore) even though its process exists; a worker that
// never wrote one (an older dataplane) is "unknown", never "stalled". Pure
// functions of the shared memory plus one transition logger, so status,
// /metrics and the log say the same thing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shm_region.h"

namespace sluice::cp {

struct worker_liveness {
  uint32_t worker = 0;
  double heartbeat_age_s = -1; // -1: no heartbeat written
  bool stalled = false;
};

// Every live worker (ack line `live`), at `now_ns` (CLOCK_MONOTONIC).
std::vector<worker_liveness> watch_workers(const shm_region& region, uint64_t now_ns,
                                           uint32_t stall_ms);

// sluice_worker_stalled and sluice_worker_heartbeat_age_seconds, per worker.
std::string render_worker_metrics(const std::vector<worker_liveness>& w);

// Logs each worker that becomes stalled or recovers (call from the tick).
class stall_logger {
public:
  explicit stall_logger(std::function<void(const std::string&)> log) : log_(std::move(log)) {}
  void update(const std::vector<worker_liveness>& w);

private:
  std::function<void(const std::string&)> log_;
  std::vector<bool> stalled_;
};

} // namespace sluice::cp
