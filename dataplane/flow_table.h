// Per-worker connection tracking: one DPDK rte_hash per address family, created
// with lock-free reader/writer concurrency so the owning worker writes while an
// introspection thread (e.g. `sluicectl conns`) may read. The value of a key is
// its position in the hash, which indexes a flat array of flow_entry: no pointer
// chasing and no allocation per flow.
//
// Both directions of a NAT flow live in the same table: the client-side key
// (client, VIP, ports) holds the flow; the backend-side key (backend, local
// address or client, ports) is a `reply` entry pointing at it. A lookup with the
// packet's own 5-tuple therefore finds either kind.
//
// Trade-offs: a copy of every key is kept by position (16 or 40 bytes per
// entry) so the reply path and deletions reach the flow's key without a second
// hash search. Deleted positions are recycled through DPDK's RCU defer queue
// (QSBR), so a reader never sees a position reused under it; with no reader
// registered they are reclaimed at once. Inserts fail only when the table is
// truly full (extendable buckets); the pipeline then evicts a half-open entry
// found by a bounded scan, or forwards statelessly.
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_hash.h>
#include <rte_rcu_qsbr.h>

#include "result.h"

namespace sluice::dp {

struct flow_key4 {
  uint32_t src; // network order
  uint32_t dst;
  uint16_t sport; // network order
  uint16_t dport;
  uint8_t proto;
  uint8_t pad[3];
};
static_assert(sizeof(flow_key4) == 16);

struct flow_key6 {
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t sport;
  uint16_t dport;
  uint8_t proto;
  uint8_t pad[3];
};
static_assert(sizeof(flow_key6) == 40);

enum class flow_kind : uint8_t { forward = 0, reply = 1 };
enum class tcp_state : uint8_t { syn = 0, established = 1, fin = 2, closed = 3, udp = 4 };

struct flow_entry {
  uint32_t backend;     // backend slot
  uint32_t incarnation; // backend incarnation when the flow was scheduled
  uint16_t service;     // service index
  flow_kind kind;
  tcp_state state;
  uint32_t last_seen_ms; // worker clock, wraps after 49 days (compare by difference)
  uint32_t timeout_ms;   // idle timeout of the current state
  uint32_t hash;         // flow hash (Maglev input, GUE source port, encap source); synproxy
                         // flows (nat, dnat): our ISN to the client, then the seq delta
  uint32_t peer;         // forward: reply position + 1 (0 = none); reply: forward position
  uint8_t mode;          // abi::fwd_mode at creation
  uint8_t syn_answered;  // NAT modes: backend sent SYN-ACK
  uint8_t client_mac[6]; // where replies to the client go (NAT modes)
  uint16_t nat_port;     // full NAT: local source port, network order
  uint16_t nat_addr_idx; // full NAT: index into the worker's pool addresses
  uint8_t nat_addr[16];  // full NAT: local source address (v4 in the first 4 bytes)
  uint8_t live;          // forward entry in use (the sweep walks positions)
  uint8_t synproxy;      // synproxy_state (synproxy.h); `hash` then holds its sequence numbers
  uint8_t reserved[2];
  uint32_t syn_us; // worker microsecond clock when the SYN was forwarded
};
static_assert(sizeof(flow_entry) == 64);

// One family's table.
template <typename Key> class flow_table {
public:
  flow_table() = default;
  flow_table(const flow_table&) = delete;
  flow_table& operator=(const flow_table&) = delete;
  ~flow_table();

  result<void> init(const char* name, uint32_t capacity, int socket_id);

  // Bulk lookup; positions[i] < 0 on miss.
  void lookup_bulk(const Key** keys, uint32_t n, int32_t* positions) const {
    rte_hash_lookup_bulk(h_, reinterpret_cast<const void**>(keys), n, positions);
  }
  int32_t lookup(const Key& k) const { return rte_hash_lookup(h_, &k); }
  // Returns the position, or a negative errno (-ENOSPC when full).
  int32_t add(const Key& k) {
    int32_t pos = rte_hash_add_key(h_, &k);
    if (pos >= 0)
      keys_[pos] = k;
    return pos;
  }
  void del(const Key& k) { rte_hash_del_key(h_, &k); }
  // The key stored at a position. A copy kept beside the entries: DPDK's
  // rte_hash_get_key_with_position re-hashes and re-searches the key to verify
  // it, which the reply path cannot afford.
  const Key& key_at(int32_t pos) const { return keys_[pos]; }
  const Key* key_ptr(int32_t pos) const { return &keys_[pos]; }

  flow_entry& entry(int32_t pos) { return entries_[pos]; }
  const flow_entry& entry(int32_t pos) const { return entries_[pos]; }
  uint32_t capacity() const { return capacity_; }
  // Positions are 0..positions()-1.
  uint32_t positions() const { return capacity_ + 1; }
  int32_t count() const { return rte_hash_count(h_); }
  rte_hash* handle() const { return h_; }
  rte_rcu_qsbr* qsbr() const { return qsbr_; }

private:
  rte_hash* h_ = nullptr;
  rte_rcu_qsbr* qsbr_ = nullptr;
  flow_entry* entries_ = nullptr;
  Key* keys_ = nullptr;
  uint32_t capacity_ = 0;
};

// Readers that may look at the tables from other threads register with the
// table's QSBR variable; this bounds how many.
inline constexpr uint32_t flow_table_max_readers = 4;

} // namespace sluice::dp
