// The dataplane's port statistics for the control plane (`sluicectl ports`,
// sluice_port_* metrics), read from its telemetry commands /sluice/ports and
// /sluice/port,ID (dataplane/port_stats.h) and reshaped into one JSON answer:
//
//   {"ports": [{"port": 0, "name": "net_af_xdp0", "driver": "net_af_xdp",
//               "role": "port",
//               "steering": "software", "dnat_steering": "handoff",
//               "stats": {"ipackets": N, "opackets", "ibytes", "obytes",
//                         "imissed", "ierrors", "oerrors", "rx_nombuf"},
//               "queues": [{"queue": 0, "ipackets", "ibytes", "errors",
//                           "opackets", "obytes",
//                           "xsk": {"rx_dropped", "rx_invalid_descs",
//                                   "tx_invalid_descs", "rx_ring_full",
//                                   "rx_fill_ring_empty_descs",
//                                   "tx_ring_empty_descs"}}],   (AF_XDP only)
//               "xstats": {"NAME": N, ...}}]}                  (non-zero only)
//
// One telemetry connection per command, each bounded by `timeout`.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "result.h"

namespace sluice::cp {

result<nlohmann::json> query_port_stats(const std::string& shm_path,
                                        std::chrono::milliseconds timeout);

// Reshapes one /sluice/port,ID reply (exposed for unit tests).
nlohmann::json port_entry_of(const nlohmann::json& reply);

} // namespace sluice::cp
