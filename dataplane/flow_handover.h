// Hitless restart of sluice-dataplane (--flow-snapshot): the glue between the
// workers' pipelines and the flow snapshot file. A clean stop saves every
// worker's flows once the workers have stopped; the next start adopts them
// into the owning workers before any worker polls its queues, so the first
// packet of every established connection finds its flow (backend, NAT port,
// state) as before. docs/high-availability.md, "Hitless dataplane restart".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pipeline.h"

namespace sluice::dp {

// Adopts the snapshot at `path` (if any) into `pipelines` and removes the
// file; a damaged one is renamed PATH.rejected. Never fails the start: what
// cannot be adopted is reported on stdout/stderr and counted
// (flows_adopt_refused). Call before the workers are launched.
void adopt_flow_snapshot(const std::string& path,
                         const std::vector<std::unique_ptr<pipeline>>& pipelines);

// Writes every live flow of `pipelines` to `path`. Call after the workers
// stopped. Returns false (after a message on stderr) when the file cannot be
// written.
bool save_flow_snapshot(const std::string& path,
                        const std::vector<std::unique_ptr<pipeline>>& pipelines);

} // namespace sluice::dp
