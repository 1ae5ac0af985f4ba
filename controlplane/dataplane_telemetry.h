// Client of the dataplane's DPDK telemetry socket, for what only the dataplane
// knows (the tracked flows behind `sluicectl conns`). The dataplane publishes
// the socket's path as a symlink found from the shared-memory path
// (shm_region::telemetry_link_path); each query opens the socket, sends one command and
// reads one JSON reply, with a timeout so a stuck dataplane cannot stall the
// API thread.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "result.h"

namespace sluice::cp {

// Runs `command` (e.g. "/sluice/conns,20") and returns the reply's value for
// that command.
result<nlohmann::json> query_dataplane_telemetry(const std::string& shm_path,
                                                 const std::string& command,
                                                 std::chrono::milliseconds timeout);

} // namespace sluice::cp
