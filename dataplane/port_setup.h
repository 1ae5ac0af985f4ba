// Start-up of the DPDK side of sluice-dataplane: the mbuf pool, the ports (one
// RX/TX queue pair per worker plus one TX queue for the main lcore), RSS and the
// software steering model, and the rings between lcores. Runs once on the main
// lcore before the workers start; nothing here is on the packet path.
//
// Queue layout per port: RX queue w and TX queue w belong to worker w; TX queue
// n_workers (when the driver offers it) belongs to the main lcore, which sends
// ARP requests / neighbour solicitations on it. Without that queue the main
// lcore sends nothing and neighbours must be configured statically (--neigh).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "pipeline.h"
#include "result.h"

namespace sluice::dp {

// Toeplitz key programmed into every port and used by the software model. The
// 0x6d5a pattern makes the hash symmetric (swapping source and destination
// gives the same hash), so both directions of a flow land on the same worker
// wherever the NIC hashes the same fields on both sides.
extern const std::array<uint8_t, 40> sluice_rss_key;

// Entries of the software RETA when the ports cannot hash (virtual devices).
inline constexpr uint16_t software_reta_size = 128;

struct port_info {
  uint16_t port_id = 0;
  std::string driver;
  rte_ether_addr mac{};
  uint16_t n_rx_queues = 0;
  uint16_t n_tx_queues = 0;
  bool rss = false;     // the port spreads RX over the workers' queues
  bool main_tx = false; // TX queue `main_tx_queue` is reserved for the main lcore
  uint16_t main_tx_queue = 0;
  uint16_t mtu = 0;     // what the port runs with (0: left at the driver default)
  uint16_t rx_desc = 0; // descriptors per RX / TX queue after the driver's adjustment
  uint16_t tx_desc = 0;
  std::vector<uint16_t> reta; // programmed RETA (queue = worker id), empty without RSS
  // net_af_xdp: the AF_XDP socket of each RX queue (-1: not identified), for
  // its XDP statistics (xsk_stats.h). Owned by the PMD: never closed here.
  std::vector<int> xsk_fds;
};

// Descriptors per RX / TX queue (--rx-desc / --tx-desc). For net_af_xdp the
// RX count is also the size of the AF_XDP socket's RX ring: what vip_steer
// redirects while the worker is busy or asleep waits there, and overflows
// into the socket's rx_ring_full counter. The driver may round the counts
// (rte_eth_dev_adjust_nb_rx_tx_desc).
inline constexpr uint16_t default_rx_descriptors = 1024;
inline constexpr uint16_t default_tx_descriptors = 1024;

struct port_request {
  uint16_t port_id = 0;
  uint16_t n_workers = 1;
  uint16_t mtu = 1500;
  rte_mempool* pool = nullptr;
  int socket_id = 0;
  // Ask for the main lcore's extra TX queue. sluice-pktgen turns it off: a
  // memif client must not offer more TX rings than the server has RX queues.
  bool want_main_tx = true;
  uint16_t rx_desc = default_rx_descriptors;
  uint16_t tx_desc = default_tx_descriptors;
};

// Mbufs needed for `n_ports` ports with `n_workers` workers, including ring and
// cache slack.
uint32_t mempool_size(uint16_t n_ports, uint16_t n_workers,
                      uint16_t rx_desc = default_rx_descriptors,
                      uint16_t tx_desc = default_tx_descriptors);

// Creates the mbuf pool for an egress MTU (data room grows for jumbo MTUs).
result<rte_mempool*> create_mempool(uint16_t n_ports, uint16_t n_workers, uint16_t mtu,
                                    int socket_id, uint16_t rx_desc = default_rx_descriptors,
                                    uint16_t tx_desc = default_tx_descriptors);

// Configures, starts and puts into promiscuous mode one port. Errors name the
// port and the driver.
result<port_info> setup_port(const port_request& req);

// One-line summary for the log: driver, queues, RSS, MAC, MTU.
std::string describe_port(const port_info& p);

// Fills `cfg` from the ports: hardware RSS when every port spreads over the
// workers, otherwise software steering (with more than one worker).
steering_config make_steering(const std::vector<port_info>& ports, uint16_t n_workers);

// Stops and closes a port (net_pcap flushes its TX file on close).
void shutdown_port(uint16_t port_id);

// Rings: one handoff ring per worker (multi-producer, single-consumer) and one
// exception ring to the main lcore (multi-producer, single-consumer).
inline constexpr uint32_t handoff_ring_size = 1024;
inline constexpr uint32_t exception_ring_size = 1024;
result<std::vector<rte_ring*>> create_handoff_rings(uint16_t n_workers, int socket_id);
result<rte_ring*> create_exception_ring(int socket_id);

} // namespace sluice::dp
