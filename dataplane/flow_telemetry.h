// DPDK telemetry commands of sluice-dataplane, answered on the EAL telemetry
// socket (/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2) by the telemetry
// thread while the workers forward:
//   /sluice/conns,LIMIT[,SERVICE]  tracked flows (client, VIP, backend slot,
//                                  state, idle time, worker), at most LIMIT
//   /sluice/workers                per-worker active flow counts
// The control plane relays them to `sluicectl conns`.
#pragma once

#include <vector>

#include "pipeline.h"

namespace sluice::dp {

// Registers the commands for `pipelines` (which must outlive the process's
// telemetry use: call unregister before destroying them).
void register_flow_telemetry(const std::vector<pipeline*>& pipelines);
void unregister_flow_telemetry();

} // namespace sluice::dp
