#include "neighbour_table.h"

#include "flow_hash.h"

namespace sluice::dp {

neighbour_table::neighbour_table(uint32_t capacity, uint32_t max_backends)
    : backend_mac_(max_backends, 0) {
  uint32_t cap = 16;
  while (cap < capacity * 2)
    cap <<= 1;
  entries_.resize(cap);
  mask_ = cap - 1;
}

uint32_t neighbour_table::slot_of(const ip_addr& ip) const {
  return uint32_t(hash_bytes(ip.bytes.data(), 16, 0x6e65696768ull)) & mask_;
}

bool neighbour_table::set(const ip_addr& ip, const uint8_t* mac, bool is_static) {
  uint32_t i = slot_of(ip);
  for (uint32_t probes = 0; probes <= mask_; ++probes, i = (i + 1) & mask_) {
    entry& e = entries_[i];
    if (load_acquire(e.used) && e.ip == ip) {
      if (e.is_static && !is_static)
        return true; // learned answers never override static entries
      e.is_static = e.is_static || is_static;
      store_release(e.mac, pack_mac(mac));
      return true;
    }
    if (!load_acquire(e.used)) {
      e.ip = ip;
      e.is_static = is_static;
      store_release(e.mac, pack_mac(mac));
      store_release(e.used, 1u); // publish after ip and mac are written
      return true;
    }
  }
  return false;
}

packed_mac neighbour_table::lookup(const ip_addr& ip) const {
  uint32_t i = slot_of(ip);
  for (uint32_t probes = 0; probes <= mask_; ++probes, i = (i + 1) & mask_) {
    const entry& e = entries_[i];
    if (!load_acquire(e.used))
      return 0;
    if (e.ip == ip)
      return load_acquire(e.mac);
  }
  return 0;
}

bool neighbour_table::is_static(const ip_addr& ip) const {
  uint32_t i = slot_of(ip);
  for (uint32_t probes = 0; probes <= mask_; ++probes, i = (i + 1) & mask_) {
    const entry& e = entries_[i];
    if (!load_acquire(e.used))
      return false;
    if (e.ip == ip)
      return e.is_static != 0;
  }
  return false;
}

} // namespace sluice::dp
