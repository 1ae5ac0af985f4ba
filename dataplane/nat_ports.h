// Full-NAT source ports of one worker, allocated per (pool address, backend
// address, backend port): a local port only has to be unique among the
// connections to one backend endpoint, so the same port serves several backends
// at once and capacity grows with the number of backends.
//
// Each worker owns a disjoint share of every set's ports: port p belongs to
// worker w when the NIC's RSS (Toeplitz, the ports' key and redirection table)
// of the reply's 5-tuple (backend address/port → pool address/p) selects w, so
// replies reach the flow's owner without a handoff. Toeplitz is linear over
// GF(2), so hash(tuple) = hash(tuple with p = 0) ^ hash(only p): one table of
// per-port contributions (computed at start-up) and one hash per set give every
// port's owner with a XOR.
//
// Free ports are reused first-in-first-out (freed longest ago first), so a port
// goes back to a backend as late as possible, well after that backend's
// TIME_WAIT for the previous connection on it. Leases that enter a closing
// state are remembered in order (the newest `closing_capacity` per set), so
// when a set runs dry the oldest closing connection holding one of its ports
// can be evicted instead of refusing the new one.
//
// Trade-offs: sets are created when a table generation names a new backend
// endpoint of a `nat` service (begin_publication/bind/end_publication, on the
// worker thread between bursts: that is the only place this module allocates).
// A set costs 2 bytes per owned port (FIFO) + 8 KiB (lease bitmap) + 16 KiB
// (closing queue): with the full 1024-65535 range, about 150 KiB per (pool
// address, backend) for one worker and 63 KiB + 24 KiB per worker with two.
// The packet path (acquire/release/note_closing) is O(1) and never allocates.
// Set indices are 16-bit: at most 65,535 sets per worker.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include "ip_addr.h"
#include "result.h"

namespace sluice::dp {

// A port handed out: the set (pool address + backend endpoint) and the port.
struct nat_lease {
  uint16_t set = 0;
  uint16_t port_be = 0; // network order
};

struct nat_ports_params {
  uint16_t worker_id = 0;
  uint16_t n_workers = 1;
  uint16_t port_min = 1024; // host order, inclusive
  uint16_t port_max = 65535;
  std::vector<ip_addr> pool; // v4 and/or v6 pool addresses
  // RSS model; an empty RETA (or one worker) makes every port this worker's.
  std::array<uint8_t, 40> rss_key{};
  std::vector<uint16_t> reta;
  uint32_t max_backend_slots = 4096; // backend slots of the shared tables
};

class nat_ports {
public:
  static constexpr uint32_t closing_capacity = 4096;
  static constexpr uint32_t max_sets = 65535;

  result<void> init(const nat_ports_params& p);

  // --- publication (worker thread, between bursts) ---
  // Binds backend slots to sets: call begin, then bind() for every in-use slot
  // of a `nat` service, then end. Sets are created for new endpoints (one per
  // pool address of the backend's family); sets no slot names and that hold no
  // lease are recycled. Fails (and leaves the slot unbound: its new flows get
  // nat_port_exhausted) only when the set limit is reached.
  void begin_publication();
  result<void> bind(uint32_t slot, const ip_addr& backend, uint16_t backend_port_host);
  void end_publication();

  // --- packet path ---
  // Takes the oldest free port of backend slot `slot` on one of the pool
  // addresses of its family (the first tried is chosen by `hash`, so flows
  // spread over the pool). False when every set of the slot is empty.
  bool acquire(uint32_t slot, uint32_t hash, nat_lease& out) {
    const slot_binding& b = slots_[slot];
    for (uint32_t t = 0; t < b.count; ++t) {
      port_set& s = sets_[b.first + (hash + t) % b.count];
      if (!s.free_count)
        continue;
      uint16_t port = s.fifo[s.head];
      s.head = s.head + 1 == s.fifo.size() ? 0 : s.head + 1;
      --s.free_count;
      s.leased[port >> 6] |= 1ull << (port & 63);
      out.set = uint16_t(b.first + (hash + t) % b.count);
      out.port_be = uint16_t(port >> 8 | port << 8);
      return true;
    }
    return false;
  }
  // Takes a given free port of backend slot `slot` on pool address `pool`:
  // adopting a flow another process or instance chose the port for (flow
  // snapshot, flow sync), so it is never handed out twice. O(free ports of
  // the set): a cold path. False when the slot has no set on `pool`, or the
  // port is not this worker's or is already leased.
  bool reserve(uint32_t slot, const ip_addr& pool, uint16_t port_be, nat_lease& out);
  // Returns a lease to the tail of its set's FIFO. A port that is not leased
  // (double release, or a lease from before a restart) is ignored and counted.
  void release(nat_lease l) {
    if (l.set >= sets_.size())
      return void(++bad_releases_);
    port_set& s = sets_[l.set];
    uint16_t port = uint16_t(l.port_be >> 8 | l.port_be << 8);
    uint64_t bit = 1ull << (port & 63);
    if (!(s.leased[port >> 6] & bit))
      return void(++bad_releases_);
    s.leased[port >> 6] &= ~bit;
    uint32_t tail = s.head + s.free_count;
    if (tail >= s.fifo.size())
      tail -= uint32_t(s.fifo.size());
    s.fifo[tail] = port;
    ++s.free_count;
  }
  // Remembers that the flow at `flow_pos`, holding a port of `set`, entered a
  // closing state (FIN or RST). The newest closing_capacity are kept.
  void note_closing(uint16_t set, uint32_t flow_pos) {
    if (set >= sets_.size())
      return;
    port_set& s = sets_[set];
    uint32_t cap = uint32_t(s.closing.size());
    if (s.closing_count == cap) { // overwrite the oldest
      s.closing_head = s.closing_head + 1 == cap ? 0 : s.closing_head + 1;
      --s.closing_count;
    }
    uint32_t tail = s.closing_head + s.closing_count;
    s.closing[tail >= cap ? tail - cap : tail] = flow_pos;
    ++s.closing_count;
  }
  // Pops closing flows of slot `slot`'s sets, oldest first, until `still_closing`
  // (pos, set) confirms one (the flow at that position is live, closing and
  // holds a port of that set); returns its position or -1. The caller releases
  // that flow, which puts its port back.
  template <typename Pred> int64_t evict_candidate(uint32_t slot, Pred&& still_closing) {
    const slot_binding& b = slots_[slot];
    for (uint32_t t = 0; t < b.count; ++t) {
      uint16_t si = uint16_t(b.first + t);
      port_set& s = sets_[si];
      while (s.closing_count) {
        uint32_t pos = s.closing[s.closing_head];
        s.closing_head = s.closing_head + 1 == s.closing.size() ? 0 : s.closing_head + 1;
        --s.closing_count;
        if (still_closing(pos, si))
          return pos;
      }
    }
    return -1;
  }

  // The pool address of a set: 16 bytes, IPv4-mapped for v4.
  const ip_addr& set_addr(uint16_t set) const { return pool_[sets_[set].pool]; }
  // Pool index of the set's address (position in params.pool).
  uint16_t set_pool(uint16_t set) const { return sets_[set].pool; }

  // --- introspection and tests ---
  bool owns(uint16_t set, uint16_t port_host) const;
  uint32_t owned(uint16_t set) const { return uint32_t(sets_[set].fifo.size()); }
  uint32_t free_ports(uint16_t set) const { return sets_[set].free_count; }
  uint32_t sets_in_use() const;
  uint32_t slot_sets(uint32_t slot) const { return slots_[slot].count; }
  uint16_t slot_set(uint32_t slot, uint32_t i) const { return uint16_t(slots_[slot].first + i); }
  uint64_t bad_releases() const { return bad_releases_; }
  size_t memory_bytes() const;

  // Worker whose RSS queue receives the reply tuple backend:bport → pool:port
  // (ports in network order). Exposed for ownership checks of replies.
  uint16_t reply_owner(const ip_addr& backend, uint16_t bport_be, const ip_addr& pool,
                       uint16_t port_be) const;

private:
  struct port_set {
    uint16_t pool = 0;
    bool in_use = false;
    std::vector<uint16_t> fifo; // host order; free ports from head, free_count long
    uint32_t head = 0;
    uint32_t free_count = 0;
    std::vector<uint64_t> leased; // bit per port (host order)
    std::vector<uint32_t> closing;
    uint32_t closing_head = 0;
    uint32_t closing_count = 0;
  };
  struct slot_binding {
    uint16_t first = 0; // first set of the endpoint (one per pool address of its family)
    uint16_t count = 0;
  };
  struct endpoint_key {
    std::array<uint8_t, 16> addr;
    uint16_t port;
    auto operator<=>(const endpoint_key&) const = default;
  };
  struct endpoint {
    uint16_t first = 0;
    uint16_t count = 0;
    bool bound = false;
  };

  uint32_t base_hash(const ip_addr& backend, uint16_t bport_host, const ip_addr& pool) const;
  uint16_t owner_of_hash(uint32_t h) const {
    return reta_.empty() ? worker_ : reta_[h % reta_.size()];
  }
  void fill_set(port_set& s, const ip_addr& backend, uint16_t bport_host);

  uint16_t worker_ = 0;
  uint16_t port_min_ = 1024, port_max_ = 65535;
  std::vector<ip_addr> pool_;
  std::vector<uint16_t> pool4_, pool6_; // indices into pool_ per family
  std::array<uint8_t, 40> key_{};
  std::vector<uint16_t> reta_; // empty when this worker owns every port
  // Toeplitz contribution of the local port alone (the reply's destination
  // port), per family, indexed by host-order port.
  std::vector<uint32_t> port_hash4_, port_hash6_;
  std::vector<port_set> sets_;
  // Recycled endpoints' first set, per family: an endpoint's sets are
  // contiguous and every endpoint of a family has one per pool address.
  std::vector<uint16_t> free_first4_, free_first6_;
  std::vector<slot_binding> slots_;
  std::map<endpoint_key, endpoint> endpoints_;
  uint64_t bad_releases_ = 0;
};

} // namespace sluice::dp
