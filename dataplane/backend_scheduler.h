// Backend selection for new flows, per service scheduler: Maglev (5-tuple or
// source address), round robin, smooth weighted round robin, least connections
// (plain and weighted, counted over all workers), source hashing with an
// affinity table that survives backend changes, weighted random, power of two
// choices, least bandwidth and least response time.
//
// Runs only on the new-flow path. State that must agree between workers (the
// sh affinity table) is shared through one lock-free multi-writer rte_hash per
// process; everything else is per worker and approximate by design: a worker
// reads other workers' active-flow and byte counters from shared memory with
// relaxed loads, never a lock. Candidates are the service's eligible backends
// (up, weight > 0) as the table builder listed them, so weight 0 (drain) and
// down backends are never chosen by any scheduler. Response-time hints and
// slow-start weights are read from the backend soft-state array in shared
// memory (abi::backend_soft) when written for the backend's incarnation, so
// they change without a table publication.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <rte_hash.h>

#include "result.h"
#include "shm_region.h"
#include "table_view.h"

namespace sluice::dp {

// Key of the shared source-affinity table: the client address masked to the
// service's prefix, and the service index.
struct affinity_key {
  uint8_t addr[16];
  uint32_t service;
};
static_assert(sizeof(affinity_key) == 20);

struct affinity_entry {
  uint64_t backend_incarnation; // slot << 32 | incarnation, one atomic word
  uint32_t last_ms;             // absolute TSC milliseconds of the last new flow
  uint32_t reserved;
};

class backend_scheduler {
public:
  backend_scheduler() = default;
  backend_scheduler(const backend_scheduler&) = delete;
  backend_scheduler& operator=(const backend_scheduler&) = delete;

  // `affinity_capacity`: client prefixes the shared sh table holds (one table
  // per shared-memory object, shared by the workers attached to it).
  // `full_counter`: counter bumped when the affinity table is full.
  result<void> init(shm_region& shm, uint16_t worker_id, uint16_t n_workers, int socket_id,
                    uint32_t affinity_capacity, uint64_t seed, uint64_t* full_counter);

  // The backend slot for a new flow, or -1 when no backend accepts new flows.
  // `flow_hash`: hash of the 5-tuple; `client`: the client address (16 bytes,
  // IPv4-mapped); `abs_ms`: TSC-based milliseconds shared by all workers.
  int32_t pick(const table_view& v, uint32_t svc, const abi::service_entry& s, uint64_t flow_hash,
               const uint8_t* client, uint32_t now_ms, uint32_t abs_ms);

  // Frees the affinity table shared by the workers of `shm_path` (it lives
  // as long as the process otherwise). Only once no pipeline of that object
  // remains: processes that build many pipelines over time (tests) call it.
  static void release_shared(const std::string& shm_path);

  // A backend answered a SYN after `rtt_us` (NAT modes): feeds
  // least-response-time through this worker's smoothed estimate.
  void record_handshake(uint32_t backend, uint32_t rtt_us);

private:
  uint64_t active(uint32_t b) const;
  uint64_t bytes(uint32_t b) const;
  uint64_t response_us(const abi::backend_entry& be, uint32_t b) const;
  uint64_t weight(const abi::backend_entry& be, uint32_t b) const;
  uint32_t random_below(uint32_t n);
  int32_t pick_weighted_random(const table_view& v, const abi::service_entry& s);
  int32_t pick_sh(const table_view& v, uint32_t svc, const abi::service_entry& s,
                  const uint8_t* client, uint32_t abs_ms);

  shm_region* shm_ = nullptr;
  uint16_t worker_ = 0;
  uint16_t n_workers_ = 1;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
  std::vector<uint32_t> rr_cursor_;    // per service
  std::vector<int64_t> wrr_current_;   // per backend slot: smooth WRR current weight
  std::vector<uint64_t> bw_snapshot_;  // per backend slot: bytes at the window start
  std::vector<uint32_t> bw_window_ms_; // per service: start of the bandwidth window
  rte_hash* affinity_ = nullptr;
  affinity_entry* affinity_entries_ = nullptr;
  uint64_t* affinity_full_ = nullptr;
};

} // namespace sluice::dp
