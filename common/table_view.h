// A read-only view of one published table slot, as the packet path uses it:
// raw pointers into the shared-memory object, rebuilt only when the generation
// changes (once per burst at most). Lookups here run per packet, so they are
// inline and branch-light; the table builder validated every index when it
// published, so nothing here re-checks bounds of indices read from the slot.
#pragma once

#include <cstdint>
#include <cstring>

#include "flow_hash.h"
#include "shm_abi.h"

namespace sluice {

struct table_view {
  const abi::slot_header* hdr = nullptr;
  const abi::service_entry* services = nullptr;
  const abi::backend_entry* backends = nullptr;
  const abi::vip_index_entry* vip_index = nullptr;
  const uint32_t* lookup = nullptr;
  uint32_t vip_mask = 0;
  uint64_t generation = 0;

  // Returns the service index, or -1 when (vip, port, proto) is not a VIP.
  int32_t find_service(const uint8_t vip[16], uint16_t port, uint8_t proto) const {
    uint32_t i = vip_index_hash(vip, port, proto) & vip_mask;
    for (;;) {
      const abi::vip_index_entry& e = vip_index[i];
      if (e.service_plus1 == 0)
        return -1;
      if (e.port == port && e.proto == proto && std::memcmp(e.vip, vip, 16) == 0)
        return int32_t(e.service_plus1 - 1);
      i = (i + 1) & vip_mask;
    }
  }

  // Maglev pick: the backend slot for a flow hash, or -1 when the service has no
  // backend accepting new flows.
  int32_t pick_backend(const abi::service_entry& s, uint64_t flow_hash) const {
    if (s.lookup_size == 0)
      return -1;
    // Lemire's multiply-shift range reduction of the low 32 bits instead of a
    // 64-bit division (about 40 cycles); equally uniform for M < 2^32.
    uint32_t i = uint32_t((uint64_t(uint32_t(flow_hash)) * s.lookup_size) >> 32);
    return int32_t(lookup[s.lookup_offset + i]);
  }
};

// Builds the view of `slot` (0 or 1) of a mapped object whose layout was
// validated. `base` is the start of the mapping.
inline table_view make_table_view(uint8_t* base, const abi::layout& l, unsigned slot) {
  table_view v;
  uint8_t* s = base + l.slot_offset[slot];
  v.hdr = reinterpret_cast<const abi::slot_header*>(s);
  v.services = reinterpret_cast<const abi::service_entry*>(s + l.services_offset_in_slot);
  v.backends = reinterpret_cast<const abi::backend_entry*>(s + l.backends_offset_in_slot);
  v.vip_index = reinterpret_cast<const abi::vip_index_entry*>(s + l.vip_index_offset_in_slot);
  v.lookup = reinterpret_cast<const uint32_t*>(s + l.lookup_offset_in_slot);
  v.vip_mask = uint32_t(l.vip_index_capacity - 1);
  v.generation = v.hdr->generation;
  return v;
}

} // namespace sluice
