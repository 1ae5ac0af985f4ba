// One tracked flow in a form another dataplane process can adopt: the unit of
// the flow snapshot a stopping dataplane writes for its successor (hitless
// restart, flow_snapshot.h) and the record the flow sync between instances is
// to carry (docs/high-availability.md).
//
// Why not the flow_entry itself: an entry names its service, backend and NAT
// port set by index (slot numbers, set numbers) that mean nothing to another
// process. The record names them by what they are — VIP and port, backend
// address and port, pool address and local port — and the adopter resolves
// them against its own published tables and its own nat_ports, so a record
// stays valid across a restart, a different worker count, or another instance
// with the same config. Fixed layout, 96 bytes, host byte order except where a
// field says network order (the snapshot is read on the host that wrote it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::dp {

struct flow_sync_record {
  uint8_t client[16];    // network order, IPv4-mapped for v4
  uint8_t vip[16];       // network order, IPv4-mapped for v4
  uint8_t backend[16];   // the backend's address (network order, IPv4-mapped)
  uint8_t nat_addr[16];  // full NAT: the pool address the flow's source was translated to
  uint16_t client_port;  // network order
  uint16_t vip_port;     // network order
  uint16_t backend_port; // network order: the port packets to the backend carry
  uint16_t nat_port;     // full NAT: local source port, network order
  uint8_t family;        // 4 or 6
  uint8_t proto;         // IPPROTO_TCP or IPPROTO_UDP
  uint8_t mode;          // abi::fwd_mode
  uint8_t state;         // flow_state (tcp_fsm.h)
  uint8_t fins;          // tcp_track::fins
  uint8_t syn_answered;  // NAT modes: the backend sent its SYN-ACK
  uint8_t synproxy;      // synproxy_state (synproxy.h)
  uint8_t reserved0;
  uint32_t hash;         // flow_entry::hash (Maglev input, GUE port, synproxy sequence delta)
  uint32_t remaining_ms; // idle time left before the flow expires
  uint8_t client_mac[6]; // where replies to the client go (NAT modes)
  uint16_t worker;       // the worker that held the flow
};
static_assert(sizeof(flow_sync_record) == 96);
static_assert(offsetof(flow_sync_record, client_port) == 64);
static_assert(offsetof(flow_sync_record, family) == 72);
static_assert(offsetof(flow_sync_record, hash) == 80);
static_assert(offsetof(flow_sync_record, client_mac) == 88);
static_assert(offsetof(flow_sync_record, worker) == 94);

// Why a record could not be adopted (one counter each in the adopt summary).
enum class adopt_refusal : uint8_t {
  no_service, // no published service for (vip, port, proto) with the record's mode
  no_backend, // the service has no backend with that address and port any more
  nat_port,   // full NAT: the pool address is not ours or the port is taken / not this worker's
  table_full, // no free way for the forward or the reply entry
  exists,     // the flow is already tracked here
  bad_record, // family, protocol, mode or state out of range
  count
};
inline constexpr const char* adopt_refusal_names[] = {"no_service", "no_backend", "nat_port",
                                                      "table_full", "exists",     "bad_record"};
static_assert(sizeof(adopt_refusal_names) / sizeof(adopt_refusal_names[0]) ==
              size_t(adopt_refusal::count));

struct adopt_summary {
  uint64_t adopted = 0;
  uint64_t refused[size_t(adopt_refusal::count)] = {};
  uint64_t refused_total() const {
    uint64_t n = 0;
    for (uint64_t r : refused)
      n += r;
    return n;
  }
};

} // namespace sluice::dp
