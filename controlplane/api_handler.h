// The versioned JSON API: one request object in, one answer object out.
// Requests are {"version": 1, "cmd": "...", ...}; answers are
// {"version": 1, "ok": true, ...} or {"version": 1, "ok": false, "error": "..."}.
// Every change goes through cp_state (the one logic layer); reads come from
// the state and, when a shared-memory region is attached, its counters.
// The command list and fields are documented in docs/controlplane.md.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "counter_baseline.h"
#include "port_stats_cache.h"
#include "shm_publish.h"
#include "shm_region.h"
#include "state.h"

namespace sluice {
class publisher;
}

namespace sluice::cp {

inline constexpr int api_version = 1;

struct daemon_context {
  cp_state* state = nullptr;
  shm_region* region = nullptr; // null in unit tests: no counters, no workers
  publisher* pub = nullptr;
  publish_stats* publishes = nullptr;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::string shm_path, socket_path, state_file;
  uint32_t stall_ms = 1000; // a live worker's heartbeat older than this: stalled
  // Adds run-time fields (health checks, effective state) to backend.list's
  // `backends` of `service`; unset in unit tests.
  std::function<void(const std::string& service, nlohmann::json& backends)> annotate_backends;
  // vip_steer's counters for `ports` ({"iface", "program_id", "counters"} or
  // {"iface", "error"}); unset without --steer-iface.
  std::function<nlohmann::json()> steer_counters;
  // Port statistics from the background query (port_stats_cache), so that a
  // dataplane that stops answering cannot stall the event loop; unset in unit
  // tests (then `ports` queries the dataplane itself).
  std::function<port_stats_snapshot()> port_stats;
  // Commands answered outside this module (ha_daemon: instance.drain, bgp,
  // peers); nullopt = not one of them. Unset in unit tests.
  std::function<std::optional<nlohmann::json>(const std::string& cmd, const nlohmann::json& req)>
      extra_commands;
};

class api_handler {
public:
  explicit api_handler(daemon_context& ctx) : ctx_(ctx) {}
  // Never throws: malformed requests get an error answer.
  nlohmann::json handle(const nlohmann::json& request);
  // Parses one request line and answers it.
  std::string handle_line(const std::string& line);
  // Who sends the next requests (SO_PEERCRED), for their audit lines; -1 =
  // unknown.
  void set_peer(int uid, int pid) {
    peer_uid_ = uid;
    peer_pid_ = pid;
  }

private:
  void audit(const std::string& cmd, const nlohmann::json& req, const nlohmann::json& answer);
  int peer_uid_ = -1;
  int peer_pid_ = -1;
  nlohmann::json dispatch(const std::string& cmd, const nlohmann::json& req);
  nlohmann::json status();
  nlohmann::json stats();
  nlohmann::json conns(const nlohmann::json& req);
  nlohmann::json zero(const nlohmann::json& req);
  counter_baseline baseline_; // `zero`: subtracted from `stats`
  daemon_context& ctx_;
};

} // namespace sluice::cp
