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
};

struct flow_timeouts {
  uint32_t syn_s = 30;
  uint32_t established_s = 900;
  uint32_t fin_s = 120;
  uint32_t udp_s = 300;
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
};

} // namespace sluice
