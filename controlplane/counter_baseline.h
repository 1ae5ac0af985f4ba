// `sluicectl zero`: the dataplane's workers own their counters (one writer
// each, never reset by anyone else), so zeroing is a baseline the control
// plane subtracts from what it reads. The baseline is kept per service name
// and backend (service + endpoint), so it follows config changes; it applies
// to the `stats` API (sluicectl list --stats, top) only: /metrics keeps the
// raw, monotonic counters Prometheus expects. Gauges (active flows, handshake
// time) are never subtracted. The baseline lives in the control plane's
// memory: a restart forgets it.
//
// Owning thread: the event loop (API requests).
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>

#include "config_model.h"
#include "stats_reader.h"

namespace sluice::cp {

class counter_baseline {
public:
  // Makes the counters in `snap` the new zero of service `only` (its backends
  // included), or of everything (services, backends, drops, worker counters)
  // when `only` is empty.
  void zero(const cp_config& config, const counter_snapshot& snap, const std::string& only);
  // Subtracts the baseline from `snap` (read for `config`); a counter below
  // its baseline (a restarted dataplane) counts from 0 again.
  void apply(const cp_config& config, counter_snapshot& snap) const;

private:
  std::map<std::string, abi::service_counters> services_;
  std::map<std::string, abi::backend_counters> backends_;
  std::optional<std::array<uint64_t, drop_reason_count>> drops_;
  std::optional<std::array<uint64_t, worker_counter_count>> worker_;
};

} // namespace sluice::cp
