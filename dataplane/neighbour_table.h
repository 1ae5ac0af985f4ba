// Next-hop MACs for the packet path. The table maps IP → MAC for neighbours on
// the link (static entries from the command line plus what ARP/ND resolved),
// and caches the resolved next-hop MAC per backend slot so the per-packet cost
// is a single 64-bit load. Exactly one thread writes (the main lcore's
// neighbour manager); workers only read. A MAC and its valid bit are packed into
// one 64-bit word so a reader never sees a torn MAC without a seqlock.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ip_addr.h"
#include "shm_atomic.h"

namespace sluice::dp {

// MAC in bits 0..47 (byte i of the MAC at bits 8*i), valid flag at bit 63.
using packed_mac = uint64_t;
inline constexpr packed_mac mac_valid_bit = 1ull << 63;

inline packed_mac pack_mac(const uint8_t* mac) {
  packed_mac v = 0;
  std::memcpy(&v, mac, 6);
  return v | mac_valid_bit;
}
inline void unpack_mac(packed_mac v, uint8_t* out) {
  std::memcpy(out, &v, 6);
}

class neighbour_table {
public:
  // capacity: IP entries (power of two chosen internally); max_backends: size of
  // the per-backend cache (the ABI's max_backends).
  neighbour_table(uint32_t capacity, uint32_t max_backends);

  // Writer side (one thread).
  // Returns false when the table is full.
  bool set(const ip_addr& ip, const uint8_t* mac, bool is_static);
  void set_backend_mac(uint32_t backend_slot, packed_mac mac) {
    store_release(backend_mac_[backend_slot], mac);
  }

  // Reader side (any thread). 0 when unknown.
  packed_mac lookup(const ip_addr& ip) const;
  packed_mac backend_mac(uint32_t backend_slot) const {
    return load_acquire(backend_mac_[backend_slot]);
  }
  bool is_static(const ip_addr& ip) const;

  struct entry {
    ip_addr ip;
    uint64_t mac = 0;  // packed_mac, accessed atomically
    uint32_t used = 0; // accessed atomically; set once, never cleared
    uint32_t is_static = 0;
  };
  const std::vector<entry>& entries() const { return entries_; }

private:
  uint32_t slot_of(const ip_addr& ip) const;
  std::vector<entry> entries_;
  uint32_t mask_;
  std::vector<uint64_t> backend_mac_;
};

} // namespace sluice::dp
