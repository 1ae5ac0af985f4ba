// Runs the active checks of every backend on one thread (the health thread,
// driving a prober) and turns their outcomes into overlay updates: rise/fall
// transitions (logged with the reason), latency hints (only when the smoothed
// latency moved by more than 20 %, at most once a second per backend, so
// checks never cause a publication storm) and slow-start weight steps.
//
// Threads: configure(), take_updates() and snapshot() may be called from any
// thread (the daemon calls them from its event loop, which applies the
// updates through cp_state::set_health); everything else runs on the health
// thread. process() and reconfigure() are public so unit tests drive the
// logic with a fake clock and no thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend_overlay.h"
#include "config_model.h"
#include "health_fsm.h"
#include "health_probe.h"
#include "stats_reader.h"

namespace sluice::cp {

// What `sluicectl backend list` shows about one backend's checks.
struct backend_health {
  check_kind kind = check_kind::none;
  health_status status = health_status::up;
  bool passive_ejected = false;
  bool last_ok = true;
  std::string last_result; // empty before the first check
  uint32_t last_latency_us = 0;
  uint64_t checks = 0, failures = 0, transitions = 0;
  uint32_t in_row = 0; // consecutive outcomes equal to the last
  uint8_t weight_pct = 100;
};

class health_manager {
public:
  using log_fn = std::function<void(const std::string&)>;
  explicit health_manager(log_fn log, clock_fn clock = steady_now_ns);
  ~health_manager();

  result<void> start(); // the health thread
  void stop();

  // New desired config: targets are added, kept (same parameters: the state
  // machine and schedule continue) or dropped.
  void configure(const cp_config& c);
  // Overlay changes since the last call, in order.
  std::vector<overlay_update> take_updates();
  // Keyed by overlay_key().
  std::map<std::string, backend_health> snapshot() const;

  // Passive detection: the dataplane's counters (called by the event loop).
  void observe_counters(const cp_config& c, const counter_snapshot& snap);

  // Health-thread internals, public for tests.
  void reconfigure(); // applies the last configure()
  void process(const std::vector<probe_outcome>& outcomes);
  void ramp(); // slow-start steps due now
  std::vector<probe_target> targets() const;

private:
  struct tracked {
    std::string service, endpoint;
    ip_addr addr;
    uint16_t port = 0;
    health_config cfg;
    health_fsm fsm{2, 3};
    backend_health view;
    backend_overlay published;
    double rtt_ewma_us = 0;
    int64_t rtt_published_ns = 0;
    int64_t up_since_ns = 0;
    // passive detection
    uint64_t last_new_flows = 0, last_failures = 0;
    bool have_counters = false;
    uint32_t ejections = 0;
    int64_t ejected_until_ns = 0;
  };
  void emit(tracked& t, backend_overlay v, std::string reason);
  backend_overlay desired_overlay(const tracked& t) const;
  void loop();

  log_fn log_;
  clock_fn clock_;
  mutable std::mutex mu_;
  std::optional<cp_config> pending_;
  std::map<std::string, uint32_t> ids_; // overlay key -> target id (stable)
  std::map<uint32_t, tracked> tracked_;
  uint32_t next_id_ = 1;
  bool targets_changed_ = false;
  std::vector<overlay_update> updates_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

} // namespace sluice::cp
