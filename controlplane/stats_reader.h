// Sums the dataplane's per-worker counters (shared memory, one writer each)
// into per-service and per-backend totals, in the order of the desired config.
// Readers never write the stats area; the sums are a consistent-enough
// snapshot (each counter is read atomically, not all of them at one instant).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "config_model.h"
#include "counters.h"
#include "shm_abi.h"
#include "shm_region.h"
#include "table_builder.h"

namespace sluice::cp {

struct counter_snapshot {
  uint64_t time_ns = 0;                                     // CLOCK_MONOTONIC when read
  std::vector<abi::service_counters> services;              // config order
  std::vector<std::vector<abi::backend_counters>> backends; // [service][backend], config order
  std::array<uint64_t, drop_reason_count> drops{};
  std::array<uint64_t, worker_counter_count> worker{};
  // Per worker, for workers that are live or have counted anything (index =
  // worker id): what the sums above are made of.
  struct per_worker {
    uint32_t worker = 0;
    std::array<uint64_t, drop_reason_count> drops{};
    std::array<uint64_t, worker_counter_count> counters{};
  };
  std::vector<per_worker> workers;
};

// Share of the packets received by a worker (or, given the sums, by all) that
// were handed to another worker: handoff_out / rx_packets, 0 before the first
// packet. Since the dataplane started; a rate over a window is the PromQL
// rate(sluice_worker_handoff_out_total[1m]) / rate(sluice_worker_rx_packets_total[1m]).
inline double handoff_fraction(const std::array<uint64_t, worker_counter_count>& c) {
  const uint64_t rx = c[size_t(worker_counter::rx_packets)];
  return rx ? double(c[size_t(worker_counter::handoff_out)]) / double(rx) : 0.0;
}

counter_snapshot read_counters(const shm_region& region, const table_builder& builder,
                               const cp_config& config);

uint64_t monotonic_ns();

} // namespace sluice::cp
