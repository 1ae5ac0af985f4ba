// Maglev lookup-table population (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016, section 3.4), with
// weights as ratios.
//
// Trade-offs:
// - Each backend's preference list (offset, skip) comes from a hash of its
//   IDENTITY (address and port), never from its position in the input or its
//   slot number, and candidates are sorted by identity before population: the
//   same backend set yields the same table on every balancer instance,
//   whatever the input order (ECMP across instances needs that).
// - Weights: in round r, backend i claims its next preferred free entry when
//   r * weight_i >= its target, which then grows by max_weight (Envoy's
//   weighted Maglev). A backend of weight w takes w/max_weight of the turns of
//   the heaviest one, so shares follow the weights to within a few entries.
//   Backends are queued by the round of their next turn (a calendar of rounds),
//   so the work is O(M + N + rounds) plus the probes of the preference walk,
//   whatever the weight ratios; no division per entry.
// - Disruption: like any Maglev table, removing one of N backends moves slightly
//   more than the optimal 1/N of the entries (see docs/maglev.md for measured
//   numbers). M should be much larger than N (the paper suggests M > 100 * N).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "ip_addr.h"

namespace sluice {

// True when n is prime (deterministic; trial division by 6k +- 1 up to sqrt(n)).
bool is_prime(uint32_t n);

// A backend as Maglev sees it: who it is (hashed into its preference list and
// used to order candidates), how much traffic it should get, and the value the
// table stores for it.
struct maglev_backend {
  // Identity bytes: address (16 bytes, IPv4-mapped) then port (host order,
  // little-endian) then 2 zero bytes. Use maglev_identity() to fill it.
  std::array<uint8_t, 20> identity{};
  uint32_t weight = 1; // 0 = no entries
  uint32_t slot = 0;   // value written into the table (the backend slot index)
};

std::array<uint8_t, 20> maglev_identity(const ip_addr& addr, uint16_t port);

// Fills out[0..m-1] with backend slots. Preconditions: m prime, at least one
// backend with weight > 0, and m >= the number of backends with weight > 0.
// Returns false (out untouched) when they do not hold. Allocates only scratch
// proportional to the number of backends and the number of rounds.
bool maglev_populate(std::span<const maglev_backend> backends, uint32_t m, uint32_t* out);

// Convenience form: the table, or an empty vector when the preconditions fail.
std::vector<uint32_t> maglev_table(std::span<const maglev_backend> backends, uint32_t m);

} // namespace sluice
