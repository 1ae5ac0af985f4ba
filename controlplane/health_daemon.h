// The daemon's side of health checking: owns the health manager (and its
// thread), feeds it the desired config after every change and the dataplane's
// counters (passive detection), applies its overlay updates through
// cp_state::set_health on the event loop, and renders what the API and
// /metrics show about checks. One object, created by controlplane_main.cc.
//
// Owning thread: the event loop (tick, annotate, metrics).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "health_manager.h"
#include "shm_region.h"
#include "state.h"
#include "table_builder.h"

namespace sluice::cp {

class health_daemon {
public:
  health_daemon(cp_state& state, health_manager::log_fn log);
  result<void> start();
  // Every event-loop tick: follows config changes, reads counters for passive
  // detection (at most every 500 ms, only when a service enables it) and
  // publishes pending overlay updates in one transaction.
  void tick(const shm_region* region, const table_builder* builder);
  // backend.list: adds `effective_state`, `effective_weight`, `rtt_hint_us`
  // and `check` {kind, status, last_result, last_latency_us, ...}.
  void annotate(const std::string& service, nlohmann::json& backends) const;
  // sluice_backend_check_* metrics.
  std::string metrics() const;

private:
  cp_state& state_;
  health_manager::log_fn log_;
  health_manager mgr_;
  uint64_t configured_gen_ = ~0ull;
  int64_t last_counters_ns_ = 0;
  std::vector<overlay_update> pending_;
};

} // namespace sluice::cp
