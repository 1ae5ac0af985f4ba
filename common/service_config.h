// The desired state of the balancer as the table builder consumes it: services
// and their backends, in plain value types. The control plane's config loader
// and API, the dataplane's tests and the benchmark all produce this and hand it
// to the publisher; nothing here knows about shared memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ip_addr.h"
#include "shm_abi.h"

namespace sluice {

struct backend_config {
  ip_addr addr;
  uint16_t port = 0;   // 0 = the service's port
  uint16_t weight = 1; // 0 = drain: keeps its flows, gets no new ones
  abi::backend_state state = abi::backend_state::up;
  uint32_t rtt_hint_us = 0; // latency from health checks, for least-response-time in DSR modes
  uint32_t max_conns = 0;   // connection cap, whole balancer (0 = none)
  uint32_t min_conns = 0;   // reopen below this (0 = 3/4 of max_conns)
  friend bool operator==(const backend_config&, const backend_config&) = default;
};

// New-flow defence of a service (limits, mid-flow RST, SYN cookies).
struct flow_defence {
  uint32_t client_rate = 0;  // new flows/s per client prefix, 0 = unlimited
  uint32_t client_burst = 0; // 0 = client_rate
  uint8_t client_prefix4 = 32;
  uint8_t client_prefix6 = 64;
  bool mid_flow_rst = true; // nat: RST a non-SYN packet without state
  abi::synproxy_mode synproxy = abi::synproxy_mode::off;
  uint32_t synproxy_syn_rate = 10000;  // auto: SYNs/s per worker
  uint32_t synproxy_half_open = 10000; // auto: half-open flows per worker
  friend bool operator==(const flow_defence&, const flow_defence&) = default;
};

// Idle timeouts per flow state, seconds (see dataplane/tcp_fsm.h for the
// states). Defaults follow DPVS/IPVS practice; each must be 1..max_flow_timeout_s.
struct flow_timeouts {
  uint32_t syn_s = 30;            // half-open: client SYN, no answer (3 s under table pressure)
  uint32_t established_s = 900;   // established TCP
  uint32_t fin_s = 7;             // FIN seen from one side, or both without the final ACK
  uint32_t udp_s = 300;           // UDP with a reply (DSR: with a second datagram)
  uint32_t syn_recv_s = 30;       // NAT modes: backend's SYN-ACK seen, client's ACK pending
  uint32_t time_wait_s = 7;       // FIN from both sides and the final ACK seen
  uint32_t closed_s = 3;          // RST seen
  uint32_t udp_unanswered_s = 30; // UDP flow with a single datagram so far
  uint32_t adopted_s = 10;        // created by a non-SYN packet, no traffic since
  friend bool operator==(const flow_timeouts&, const flow_timeouts&) = default;
};

// Upper bound of every flow timeout: a week. Keeps seconds * 1000 far inside
// 32 bits and below the 2^31 ms the dataplane's wrapping clock compares.
inline constexpr uint32_t max_flow_timeout_s = 604800;

// The timeout fields by their config/API/CLI name, in one list so decoding,
// encoding, diffing and validation cannot drift apart.
struct flow_timeout_field {
  const char* name;
  uint32_t flow_timeouts::*member;
};
inline constexpr flow_timeout_field flow_timeout_fields[] = {
    {"syn", &flow_timeouts::syn_s},           {"established", &flow_timeouts::established_s},
    {"fin", &flow_timeouts::fin_s},           {"udp", &flow_timeouts::udp_s},
    {"syn_recv", &flow_timeouts::syn_recv_s}, {"time_wait", &flow_timeouts::time_wait_s},
    {"closed", &flow_timeouts::closed_s},     {"udp_unanswered", &flow_timeouts::udp_unanswered_s},
    {"adopted", &flow_timeouts::adopted_s},
};

struct service_config {
  ip_addr vip;
  uint16_t port = 0;
  uint8_t proto = 6; // IPPROTO_TCP / IPPROTO_UDP (17)
  abi::fwd_mode mode = abi::fwd_mode::nat;
  abi::scheduler_kind scheduler = abi::scheduler_kind::maglev;
  uint32_t maglev_size = 65537; // M, must be prime
  uint16_t gue_port = 6080;
  bool reset_on_down = false;  // NAT modes: RST the TCP flows of a backend that goes down
  bool hash_src = false;       // maglev: hash the client address only
  uint8_t sh_prefix4 = 32;     // sh: affinity per client /prefix (IPv4)
  uint8_t sh_prefix6 = 128;    // sh: affinity per client /prefix (IPv6)
  uint32_t sh_timeout_s = 300; // sh: persistence after the client's last new flow
  flow_timeouts timeouts;
  flow_defence defence;
  std::vector<backend_config> backends;
  friend bool operator==(const service_config&, const service_config&) = default;
};

} // namespace sluice
