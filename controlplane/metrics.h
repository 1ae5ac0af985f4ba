// Prometheus text exposition (format 0.0.4) of the counters, the table
// generation and the publish latency. Pure function of its inputs, so unit
// tests check the text without sockets.
#pragma once

#include <string>

#include "config_model.h"
#include "shm_publish.h"
#include "stats_reader.h"

namespace sluice::cp {

struct metrics_input {
  const cp_config* config = nullptr;
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
