// Filling vip_steer's maps from the service list. DPDK's net_af_xdp loads the
// program (vdev argument xdp_prog=.../vip_steer.bpf.o) and owns xsks_map; the
// control plane calls steer_update() after every publication so that exactly
// the published VIPs, NAT-pool addresses and dataplane addresses are steered
// to the AF_XDP sockets. Updates add the new keys before removing stale ones,
// so a VIP present in both the old and the new set is never missed.
//
// steer_update() also writes the host's own (kernel) addresses, re-read at
// every update: vip_steer leaves packets to them with the kernel, which is
// what keeps the SYN-ACKs of the control plane's health checks (and of any
// connection the host opens to a dnat backend) away from the dataplane.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ip_addr.h"
#include "result.h"
#include "service_config.h"
#include "sluice_bpf_abi.h"

namespace sluice::bpf {

struct steer_vip {
  ip_addr addr;
  uint16_t port = 0; // host order
  uint8_t proto = 6; // 6 TCP, 17 UDP
  friend bool operator==(const steer_vip&, const steer_vip&) = default;
};

struct steer_set {
  std::vector<steer_vip> vips;
  std::vector<ip_addr> nat_pool; // full-NAT source addresses (replies come back to them)
  std::vector<ip_addr> own;      // the dataplane's --addr addresses (ARP/ND, ICMP)
  // dnat backends (addr, port, proto): their replies are addressed to clients.
  std::vector<steer_vip> replies;
  // The kernel's own addresses: never steered (see vip_steer.bpf.c).
  std::vector<ip_addr> host;
};

// The VIPs and dnat backends of the services the control plane publishes
// (nat_pool and own are the dataplane's options and stay empty).
steer_set steer_set_of(const std::vector<service_config>& services);

using steer_counters = std::array<uint64_t, sluice_steer_counter_count>;
extern const char* const steer_counter_names[sluice_steer_counter_count];

// Replaces the contents of steer_vips, steer_replies and steer_addrs.
status steer_fill(int vips_fd, int replies_fd, int addrs_fd, const steer_set& set);

// Finds vip_steer attached to `iface` and fills its maps with `set` plus the
// host's addresses (host_addresses(), added to set.host).
status steer_update(const std::string& iface, const steer_set& set);

struct steer_state {
  uint32_t prog_id = 0;
  std::string mode;
  steer_set set;
  steer_counters counters{};
};
// nullopt when vip_steer is not attached to the interface.
result<std::optional<steer_state>> steer_query(const std::string& iface);

} // namespace sluice::bpf
