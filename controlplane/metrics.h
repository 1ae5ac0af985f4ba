// Prometheus text exposition (format 0.0.4) of the counters, the table
// generation and the publish latency. Pure function of its inputs, so unit
// tests check the text without sockets. Follows `promtool check metrics`:
// counters end in _total, every family has HELP and TYPE once, base units.
// Worker counters carry a `worker` label (per-worker values show imbalance
// and a stuck worker; sum() gives the totals); service and backend counters
// are summed over workers (their per-worker split says nothing useful).
#pragma once

#include <string>
#include <vector>

#include "config_model.h"
#include "shm_publish.h"
#include "stats_reader.h"

namespace sluice::cp {

struct metrics_input {
  const cp_config* config = nullptr;
  // The services as published (health checks, slow start applied), config
  // order; null = the configured states are effective (unit tests).
  const std::vector<service_config>* effective = nullptr;
  const counter_snapshot* counters = nullptr;
  uint64_t generation = 0;
  const publish_stats* publishes = nullptr;
  bool dataplane_alive = false;
  uint32_t live_workers = 0;
  uint32_t lagging_workers = 0;
  double uptime_s = 0;
};

std::string render_metrics(const metrics_input& in);

} // namespace sluice::cp
