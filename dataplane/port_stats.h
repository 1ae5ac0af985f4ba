// Port statistics of sluice-dataplane as DPDK telemetry commands, answered by
// the EAL telemetry thread while the workers forward (the control plane relays
// them to `sluicectl ports` and /metrics as sluice_port_*):
//   /sluice/ports     {"ports": [PORT_ID, ...]} in the order of the layout
//   /sluice/port,ID   one port: "port", "name", "driver", "role"
//                     (port|client|backend), "steering" (how a packet reaches
//                     its owner worker: none | hardware-rss | software),
//                     "dnat_steering" (none | rte_flow | handoff),
//                     "rx_queues", "stats" (rte_eth_stats
//                     totals), per-queue arrays q_ipackets, q_opackets,
//                     q_ibytes, q_obytes, q_errors, "xstats" (the driver's
//                     non-zero extended statistics, at most 250), and for
//                     net_af_xdp ports xsk_<counter> arrays per RX queue (the
//                     socket's XDP_STATISTICS; xsk_stats.h).
// Telemetry rather than a block in shared memory: the figures are the
// driver's, read on demand at the rate an operator or Prometheus asks, and the
// xstats set varies by driver, which a fixed ABI layout cannot hold; the
// workers never touch them. rte_eth_stats_get and xstats are safe to call
// from another thread while the workers poll (DPDK's own /ethdev/stats does).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::dp {

struct port_stats_source {
  uint16_t port_id = 0;
  std::string role;                   // "port" (one-armed), "client" or "backend"
  std::vector<int> xsk_fds;           // per RX queue, -1: unknown (port_info::xsk_fds)
  std::string steering = "none";      // none | hardware-rss | software
  std::string dnat_steering = "none"; // none | rte_flow | handoff
};

// Registers the commands for `ports` (copied; safe to call once at start-up).
void register_port_telemetry(const std::vector<port_stats_source>& ports);
// Forgets the ports before they are closed (the commands then answer empty).
void unregister_port_telemetry();

} // namespace sluice::dp
