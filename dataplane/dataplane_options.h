// The command line of sluice-dataplane after the EAL arguments ("--" separates
// them). Parsing is pure (no EAL, no I/O besides the help text), so bad options
// are reported before DPDK touches hugepages or devices. Every error is one line
// naming the option; main() prints it and exits with status 2.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ip_addr.h"
#include "pipeline.h"
#include "result.h"

namespace sluice::dp {

struct static_neighbour {
  ip_addr ip;
  std::array<uint8_t, 6> mac{};
};

struct dataplane_options {
  bool help = false; // --help: print usage and exit 0

  std::string instance = "default";
  std::string shm_path;      // empty: shm_region::default_path(instance)
  std::string flow_snapshot; // empty: flows are not saved on stop nor adopted on start

  // Port layout: one-armed (--port) or two-armed (--client-port/--backend-port).
  bool two_armed = false;
  uint16_t port = 0;         // one-armed
  uint16_t client_port = 0;  // two-armed
  uint16_t backend_port = 0; // two-armed

  std::vector<own_address> addresses;
  std::vector<ip_addr> nat_pool;
  std::vector<ip_addr> gateways[2]; // per side
  std::vector<static_neighbour> neighbours;

  uint16_t mtu = 1500;
  ip_prefix encap_src4;                // defaults set by the parser: 172.16.0.0/16
  ip_prefix encap_src6;                // fd00:5100::/96
  uint32_t flow_table_size = 1u << 20; // per worker per family
  uint16_t nat_port_min = 1024;
  uint16_t nat_port_max = 65535;
  uint16_t rx_desc = 1024; // descriptors per RX queue (AF_XDP: the socket's RX ring), 64..16384
  uint16_t tx_desc = 1024; // descriptors per TX queue, 64..16384

  // Idle back-off (see worker_loop.h).
  bool busy_poll = false;
  uint32_t idle_threshold = 256;     // empty polls before backing off
  uint32_t idle_pause_polls = 1024;  // then this many polls with rte_pause
  uint32_t idle_sleep_us = 50;       // then sleep this long, doubling per empty poll,
  uint32_t idle_sleep_max_us = 1000; // up to this (idle_sleep_us..100000)

  uint32_t stats_interval_ms = 0; // 0: no periodic stats

  // New flows per second for the whole balancer and its bucket depth (0:
  // unlimited; burst 0: the rate); pipeline_config::new_flow_budget.
  uint32_t new_flow_budget = 0;
  uint32_t new_flow_budget_burst = 0;
  uint32_t mid_flow_rst_rate = 10000; // pipeline_config::mid_flow_rst_rate
};

inline constexpr int exit_usage = 2;

// Parses our options (argv[0] is a program name, the rest are options).
// On error returns a one-line message naming the offending option.
result<dataplane_options> parse_dataplane_options(int argc, const char* const* argv);

// The usage text (options with their defaults).
std::string dataplane_usage(const char* prog);

} // namespace sluice::dp
