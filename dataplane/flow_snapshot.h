// The flow snapshot: the file a stopping sluice-dataplane writes with every
// flow it tracks (--flow-snapshot PATH) and its successor adopts before it
// takes traffic, so a restart or an upgrade of the dataplane keeps every
// established connection in every mode (docs/high-availability.md, "Hitless
// dataplane restart").
//
// Format: a 32-byte header (magic "SLUFLOWS", format version, record size,
// record count, the writer's worker count, an FNV-1a checksum of the records)
// followed by `count` flow_sync_records. Written to PATH.tmp and renamed, so a
// reader sees a whole file or none. Trade-off: a file rather than the flow
// tables left in named hugepages for the new process to map: a copy (96 bytes
// a flow, about 0.1 s per million flows each way) and a gap while the new
// process starts, in exchange for a format independent of the flow table's
// layout (which changes between versions: an upgrade is the point) and of the
// worker count. The snapshot is consumed: the reader removes it, so a later
// start never adopts stale flows.
#pragma once

#include <string>
#include <vector>

#include "flow_sync_record.h"
#include "result.h"

namespace sluice::dp {

struct flow_snapshot {
  uint16_t n_workers = 0; // the writer's worker count
  std::vector<flow_sync_record> records;
};

// Writes `snap` to `path` atomically (PATH.tmp, fsync, rename), mode 0600.
result<void> write_flow_snapshot(const std::string& path, const flow_snapshot& snap);

// Reads and checks the snapshot at `path`. An absent file is not an error: it
// gives an empty snapshot with n_workers 0.
result<flow_snapshot> read_flow_snapshot(const std::string& path);

} // namespace sluice::dp
