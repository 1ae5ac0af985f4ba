// What health checking and the lifecycle overlay on top of the operator's
// desired config: a backend the operator set `up` that failed its checks is
// published `down`; one coming back ramps its weight (slow start); checks
// report a latency hint for least-response-time. The overlay is runtime
// state: it is published but never persisted (the state file holds what the
// operator asked for, not what the checks last saw).
#pragma once

#include <cstdint>
#include <string>

#include "config_model.h"

namespace sluice::cp {

struct backend_overlay {
  bool down = false;        // failed active checks or passive detection
  uint32_t rtt_us = 0;      // 0 = no hint
  uint8_t weight_pct = 100; // slow start: share of the configured weight, 1..100
  bool operator==(const backend_overlay&) const = default;
};

// "SERVICE ADDR:PORT" with the backend's effective port.
inline std::string overlay_key(const std::string& service, const ip_addr& a, uint16_t port) {
  return service + " " + format_endpoint(a, port);
}

struct overlay_update {
  std::string key;
  backend_overlay value;
  std::string reason; // logged, returned as the change's diff line
};

} // namespace sluice::cp
