// Active health-check parameters of a service (and per-backend overrides) as
// the operator configures them. Value types only; decoded with the rest of the
// config (config_decode.cc), encoded into the state file (config_encode.cc)
// and consumed by the health manager (health_manager.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "ip_addr.h"

namespace sluice::cp {

enum class check_kind : uint8_t { none, tcp, http, udp };

std::string_view check_kind_name(check_kind k);
std::optional<check_kind> parse_check_kind(std::string_view s);

struct health_config {
  check_kind kind = check_kind::none;
  uint32_t interval_ms = 2000;   // between the starts of two checks of one backend
  uint32_t timeout_ms = 1000;    // whole check, TCP handshake included
  uint32_t rise = 2;             // consecutive successes: down -> up
  uint32_t fall = 3;             // consecutive failures: up -> down
  uint32_t jitter_pct = 10;      // each interval is randomised by +-jitter_pct %
  uint16_t port = 0;             // 0 = the backend's effective port
  std::optional<ip_addr> source; // bind checks to this source address
  // http
  std::string path = "/";
  std::string host;          // Host header; empty = the backend address
  uint16_t status_min = 200; // expected status range, inclusive
  uint16_t status_max = 399;
  std::string body_contains; // empty = any body
  // udp
  std::string send;   // payload
  std::string expect; // reply must contain this (empty = any reply)
  // lifecycle
  uint32_t slow_start_s = 0; // a backend coming up ramps its weight over this long (0 = off)
  // passive detection (off by default; meaningless in DSR modes)
  uint32_t passive_threshold_pct = 0; // eject when failures/new_flows exceeds this (0 = off)
  uint32_t passive_min_flows = 20;    // ... over at least this many new flows in the window

  bool operator==(const health_config&) const = default;
};

// Per-backend overrides, keyed by format_endpoint(address, effective port).
using backend_health_map = std::map<std::string, health_config>;

// One-line description, for diffs and logs: "http /healthz 200-399 every 2000ms".
std::string describe(const health_config& h);

} // namespace sluice::cp
