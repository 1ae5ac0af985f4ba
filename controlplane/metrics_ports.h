// Prometheus text for the dataplane's ports and the vip_steer program: the
// sluice_port_* families (labels port, name, and queue for per-queue ones)
// from a query_port_stats() answer, and sluice_xdp_steer_packets_total
// (labels iface, counter) from the steer counters. Pure function of its
// inputs, like render_metrics(), so unit tests check the text directly.
// Families whose source is missing are left out; sluice_port_stats_up says
// whether the dataplane answered; with a port_stats_cache snapshot the values
// may be the last known ones, and sluice_port_stats_age_seconds says how old.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "port_stats_cache.h"

namespace sluice::cp {

// `ports`: the query_port_stats() answer, or null when the query failed.
// `steer`: {"iface": IF, "counters": {NAME: N}} or null (no --steer-iface).
std::string render_port_metrics(const nlohmann::json* ports, const nlohmann::json* steer);
// The same from a port_stats_cache snapshot: the last known values (if any),
// `up` from the latest query, and (`age`) their age.
std::string render_port_metrics(const port_stats_snapshot& snap, const nlohmann::json* steer,
                                bool age = true);

} // namespace sluice::cp
