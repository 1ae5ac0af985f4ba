// Announces the instance's VIPs (and full-NAT pool addresses) to the network
// through BIRD 2 running beside it. The control plane decides what to announce
// (`wanted_routes`, a pure function of the config, the health-adjusted tables
// and whether this instance can serve at all), renders it as a BIRD include
// file (static /32 and /128 routes, an export filter carrying this instance's
// preference, and optionally the BGP and BFD sessions towards the routers) and
// asks BIRD to reload through its control socket. Only a change of the file
// triggers a reload, so the 50 ms tick costs nothing when nothing changes.
//
// Trade-offs: a generated include plus `configure` keeps BIRD the one owner of
// sessions, timers and graceful restart (no home-made BGP), at the price of a
// full config parse per change (a few ms for our file, measured in
// docs/high-availability.md). Withdrawal is the same reload with no routes.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config_model.h"
#include "ip_addr.h"
#include "result.h"
#include "service_config.h"
#include "shm_region.h"

namespace sluice::cp {

struct bgp_neighbor {
  ip_addr address;
  uint32_t as = 0;
};

// Per-instance settings (sluice-controlplane --bgp-* options).
struct bgp_options {
  std::string include_file; // empty: BGP announcement off
  std::string bird_socket = "/run/bird/bird.ctl";
  uint32_t local_as = 0;               // needed with neighbors or prepend
  std::vector<bgp_neighbor> neighbors; // sessions generated in the include file
  int64_t med = -1;                    // MULTI_EXIT_DISC on our routes; -1 = none
  uint32_t prepend = 0;                // extra copies of local_as in the AS path
  std::vector<std::pair<uint16_t, uint16_t>> communities; // standard communities to add
  bool bfd = true;                                        // BFD on the generated sessions
  uint32_t bfd_interval_ms = 100;                         // min rx/tx interval
  uint32_t bfd_multiplier = 3;                            // detection time = interval x multiplier
  uint32_t hold_time_s = 9;                               // BGP hold time of the generated sessions
  uint32_t heartbeat_max_age_ms = 1000; // older dataplane/worker heartbeat = not serving
};

// Parses "ADDR,AS" (a --bgp-neighbor value) and "HI:LO" (a community).
result<bgp_neighbor> parse_neighbor(const std::string& s);
result<std::pair<uint16_t, uint16_t>> parse_community(const std::string& s);

// Why the instance as a whole serves or not (status and logs).
struct serving_state {
  bool dataplane = false; // alive, heartbeats fresh, at least one live worker
  bool drained = false;   // sluicectl instance drain
  bool stopping = false;  // SIGTERM received
  std::string reason;     // why not serving; empty when serving
  bool serving() const { return dataplane && !drained && !stopping; }
};

// The dataplane half of serving_state: its process is alive, its heartbeat
// and every live worker's (when the dataplane writes them) are younger than
// max_age_ms, and at least one worker runs. Fills dataplane and reason.
void check_dataplane(const shm_region& region, uint32_t max_age_ms, serving_state& s);

struct route_reason {
  ip_addr prefix; // announced as /32 or /128
  bool announced = false;
  std::string why; // "quorum 2/1", "never", "1 healthy of quorum 2", "instance drained"...
  std::vector<std::string> services;
};

// What to announce: one entry per distinct VIP (in config order), then the
// NAT pool addresses (announced while a NAT service is announced). A VIP shared
// by several services is announced when any of them qualifies. `effective`
// is cp_state::effective(config): health-checked states and weights.
std::vector<route_reason> wanted_routes(const cp_config& config,
                                        const std::vector<service_config>& effective,
                                        const serving_state& serving,
                                        const std::vector<ip_addr>& nat_pool);

// The BIRD include file for these routes (only the announced ones).
std::string render_bird_include(const bgp_options& o, const std::string& instance,
                                const std::vector<route_reason>& routes);

// Checks the options (AS numbers where needed); the message names the option.
result<void> validate_bgp_options(const bgp_options& o);

class bgp_announcer {
public:
  using log_fn = std::function<void(const std::string&)>;
  bgp_announcer(bgp_options o, std::string instance, log_fn log);

  bool enabled() const { return !opts_.include_file.empty(); }
  // Recomputes the routes; rewrites the file and reloads BIRD when it changed
  // (or when the last reload failed, at most once a second).
  void update(const cp_config& config, const std::vector<service_config>& effective,
              const serving_state& serving, const std::vector<ip_addr>& nat_pool);
  // Withdraws everything now (SIGTERM): the file without routes, one reload.
  result<void> withdraw_all();
  nlohmann::json status() const;
  const std::vector<route_reason>& routes() const { return routes_; }
  uint64_t reloads() const { return reloads_; }
  uint64_t reload_failures() const { return failures_; }

private:
  result<void> write_and_reload(const std::string& text);

  bgp_options opts_;
  std::string instance_;
  log_fn log_;
  std::vector<route_reason> routes_;
  serving_state serving_;
  std::string written_; // text of the last successful reload
  std::string last_error_;
  double last_reload_ms_ = 0;
  int64_t last_attempt_ns_ = 0;
  uint64_t reloads_ = 0, failures_ = 0;
};

// One command on BIRD's control socket; the reply text, or an error when BIRD
// is unreachable or answers with an error code (8xxx/9xxx).
result<std::string> bird_command(const std::string& socket, const std::string& command,
                                 int timeout_ms = 3000);

} // namespace sluice::cp
