// DPDK telemetry commands of sluice-dataplane, answered on the EAL telemetry
// socket (/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2) by the telemetry
// thread while the workers forward:
//   /sluice/conns,CURSOR,LIMIT[,KEY=VALUE...]
//       one page of tracked flows: at most LIMIT (<= flow_page_max) rows from
//       CURSOR (0 = the start), filtered by service=INDEX, backend=SLOT,
//       state=NAME and client=PREFIX; the reply's `next` is the cursor of the
//       next page and `done` is 1 on the last one. Each row is one string of
//       space-separated columns named by `fields` (a DPDK telemetry reply is
//       at most 16 KiB and a string 128 bytes, so a row stays compact: the
//       VIP and protocol are the service's and are left to the control plane).
//   /sluice/workers
//       per-worker active flow counts
// The control plane relays them to `sluicectl conns`, paging until done.
#pragma once

#include <cstddef>
#include <vector>

#include "pipeline.h"

namespace sluice::dp {

// Rows per reply: the longest row (an IPv6 client) is about 95 bytes of JSON.
inline constexpr size_t flow_page_max = 128;

// Registers the commands for `pipelines` (which must outlive the process's
// telemetry use: call unregister before destroying them).
void register_flow_telemetry(const std::vector<pipeline*>& pipelines);
void unregister_flow_telemetry();

} // namespace sluice::dp
