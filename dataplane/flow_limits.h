// New-flow admission limits of one worker: per-service token buckets per
// client address or prefix, one global new-flow budget for the worker, and
// per-backend connection caps with IPVS-style upper/lower thresholds.
//
// All limits are enforced per worker, with no shared state: a client's flows
// are spread over the workers by RSS, so each worker applies 1/n_workers of a
// service's rate and burst (at least one flow per second and a burst of one),
// and 1/n_workers of a backend's thresholds (rounded up). The cost is
// precision: a client whose flows all hash to one worker gets 1/n of its
// rate; summing other workers' counters per new flow would cost cache-line
// transfers on the packet path, which the limits exist to protect.
//
// Client buckets live in a fixed table sized at start-up: 4-way buckets of
// 16-byte entries (one cache line), keyed by a hash of (service, masked client
// address). A client whose entry is not found takes the least recently used
// way of its bucket, starting with a full bucket. So under more distinct
// clients than entries, old clients are forgotten (they start full again) —
// the limit errs towards admitting; it never blocks a client that did not
// exceed its own rate. No allocation, no lock, O(1) per new flow.
#pragma once

#include <cstdint>
#include <vector>

#include "result.h"

namespace sluice::dp {

// A token bucket in milli-tokens: one token per new flow; `rate` tokens per
// second refill it up to `burst`.
struct token_bucket {
  uint32_t milli = 0;   // tokens x 1000
  uint32_t last_ms = 0; // worker clock at the last refill
  // Refills and takes one token. `rate` and `burst` are per second / flows.
  bool take(uint32_t now_ms, uint32_t rate, uint32_t burst) {
    uint64_t cap = uint64_t(burst) * 1000;
    uint64_t m = milli + uint64_t(uint32_t(now_ms - last_ms)) * rate;
    last_ms = now_ms;
    if (m > cap)
      m = cap;
    if (m < 1000) {
      milli = uint32_t(m);
      return false;
    }
    milli = uint32_t(m - 1000);
    return true;
  }
};

class flow_limits {
public:
  // `client_entries` (rounded up to a multiple of 4) bounds how many client
  // prefixes are remembered; `budget_rate`/`budget_burst` are the worker's
  // global new-flow budget (0 = unlimited).
  result<void> init(uint16_t n_workers, uint32_t client_entries, uint32_t max_backend_slots,
                    uint32_t budget_rate, uint32_t budget_burst);

  // Global budget of this worker. Call before any per-client check, so a flood
  // spends the global budget first and client buckets stay meaningful.
  bool admit_budget(uint32_t now_ms) {
    if (!budget_rate_)
      return true;
    return budget_.take(now_ms, budget_rate_, budget_burst_);
  }

  // Per-client rate of service `svc`: `client` is 16 bytes (IPv4-mapped for
  // v4); prefix is the service's prefix length for the client's family (bits
  // of that family's address). `rate` 0 admits everything.
  bool admit_client(uint16_t svc, const uint8_t* client, bool v4, uint8_t prefix, uint32_t rate,
                    uint32_t burst, uint32_t now_ms);

  // Backend cap: whether `slot`, holding `active` flows on this worker, may
  // take a new one, given the backend's thresholds (whole balancer, 0 = none;
  // lower 0 = upper * 3 / 4 as in IPVS). Once the per-worker share of `upper`
  // is reached the backend stays closed until `active` falls below the share
  // of `lower`.
  bool backend_open(uint32_t slot, uint64_t active, uint32_t upper, uint32_t lower) {
    if (!upper)
      return true;
    uint8_t& closed = closed_[slot];
    if (closed) {
      if (active >= share(lower ? lower : upper - upper / 4))
        return false;
      closed = 0;
    }
    if (active >= share(upper)) {
      closed = 1;
      return false;
    }
    return true;
  }
  bool backend_closed(uint32_t slot) const { return closed_[slot]; }

  uint32_t share(uint32_t v) const { return (v + n_workers_ - 1) / n_workers_; }
  uint32_t client_entries() const { return uint32_t(buckets_.size() * 4); }
  uint16_t n_workers() const { return n_workers_; }

private:
  struct entry {
    uint32_t tag; // hash signature; 0 = empty
    token_bucket tb;
    uint32_t used_ms; // last admission attempt, for LRU replacement
  };
  static_assert(sizeof(entry) == 16);
  struct alignas(64) bucket {
    entry way[4];
  };

  uint16_t n_workers_ = 1;
  std::vector<bucket> buckets_; // power of two
  uint32_t bucket_mask_ = 0;
  token_bucket budget_;
  uint32_t budget_rate_ = 0, budget_burst_ = 0;
  std::vector<uint8_t> closed_; // per backend slot: over its upper threshold
};

// Per-worker share of a per-client rate or burst: at least 1.
inline uint32_t per_worker(uint32_t v, uint16_t n_workers) {
  uint32_t s = v / (n_workers ? n_workers : 1);
  return s ? s : 1;
}

} // namespace sluice::dp
