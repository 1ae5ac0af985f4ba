// The control plane's desired state: what an operator configures (names,
// limits) around the plain service_config list the table builder consumes.
// Value types only; the loader, the API and the state module all produce and
// consume these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "health_config.h"
#include "service_config.h"
#include "shm_abi.h"

namespace sluice::cp {

// When the instance announces a service's VIP by BGP (docs/high-availability.md):
// `quorum` while at least `quorum` backends are healthy, `always` whatever the
// backends' health, `never` not at all. All three need a live dataplane and an
// instance that is not drained.
enum class announce_policy : uint8_t { quorum, always, never };

struct named_service {
  std::string name;                  // unique within the config; [A-Za-z0-9_.-], 1..64 chars
  service_config cfg;                // cfg.maglev_size is always limits.maglev_size
  health_config health;              // active checks of every backend (docs/configuration.md)
  backend_health_map backend_health; // per-backend replacements, by format_endpoint()
  announce_policy announce = announce_policy::quorum;
  uint32_t quorum = 1; // healthy backends needed to announce (policy quorum), 1..max_backends
};

struct limits_config {
  uint32_t flow_table_size = 1u << 20; // informational: the dataplane sizes its own table
  uint32_t maglev_size = 65537;        // M of every service, prime
};

struct cp_config {
  std::string instance = "default";
  limits_config limits;
  std::vector<named_service> services;

  const named_service* find(std::string_view name) const;
  named_service* find(std::string_view name);
  // What the publisher consumes, in config order.
  std::vector<service_config> table_input() const;
};

// One validation problem: the field path (services[2].backends[0].weight) and
// what is wrong with it.
struct issue {
  std::string path;
  std::string message;
};

// Names of enum values as they appear in config files and the API.
std::string_view mode_name(abi::fwd_mode m);
std::optional<abi::fwd_mode> parse_mode(std::string_view s);
std::string_view state_name(abi::backend_state s);
std::optional<abi::backend_state> parse_state(std::string_view s);
std::string_view proto_name(uint8_t proto);
std::optional<uint8_t> parse_proto(std::string_view s);
std::string_view announce_name(announce_policy a);
std::optional<announce_policy> parse_announce(std::string_view s);
bool is_prime(uint64_t n);
bool valid_name(std::string_view s);

// "ADDR:PORT" with IPv6 in brackets.
std::string format_endpoint(const ip_addr& a, uint16_t port);

} // namespace sluice::cp
