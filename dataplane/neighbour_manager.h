// The main lcore's slow path: keeps the neighbour table and the per-backend
// next-hop MAC cache current, sends ARP requests / neighbour solicitations for
// next hops it does not know, learns from the ARP/ND packets the workers pass
// up through the exception ring, beats the dataplane heartbeat in shared memory
// and prints periodic stats. It is the only writer of the neighbour table.
//
// Next hop of a backend: the backend itself when an own address on the backend
// side (any side in a one-armed layout) has it on-link, else the backend-side
// gateway of its family. The cache is recomputed every refresh_interval_ms,
// promptly when the published generation changes and after learning a MAC.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "dataplane_options.h"
#include "neighbour_table.h"
#include "shm_region.h"
#include "worker_loop.h"

namespace sluice::dp {

struct neighbour_manager_config {
  bool two_armed = false;
  std::vector<own_address> addresses;
  std::vector<ip_addr> gateways[2];
  // Where requests for a side go out: the main lcore's TX queue on that side's
  // port, when the port has one.
  bool can_send[2] = {false, false};
  queue_ref tx[2];
  std::array<uint8_t, 6> mac[2]{};
  rte_mempool* pool = nullptr;
  rte_ring* exception = nullptr;
  uint16_t n_workers = 1;
  uint32_t stats_interval_ms = 0;
  // Called on every poll, on the main lcore (e.g. to reconcile rte_flow rules
  // with the published tables); may be empty.
  std::function<void()> on_poll;
};

class neighbour_manager {
public:
  static constexpr uint64_t refresh_interval_ms = 100;
  static constexpr uint64_t request_interval_ms = 1000; // per next hop
  static constexpr uint32_t poll_sleep_us = 1000;

  neighbour_manager(neighbour_manager_config cfg, neighbour_table& table, shm_region& shm);

  // Loads --neigh entries; returns false when the table is full.
  bool add_static(const std::vector<static_neighbour>& entries);

  // Runs until stop_requested(), sleeping poll_sleep_us between iterations.
  void run();
  // One iteration at `now_ns` (CLOCK_MONOTONIC).
  void poll(uint64_t now_ns);

  // Next hop for a destination on `s`, or nullopt (no on-link prefix, no
  // gateway of the family).
  std::optional<ip_addr> next_hop(const ip_addr& dst, side s) const;

  // One line of summed worker counters and non-zero drop reasons on stdout.
  void print_stats() const;

  uint64_t requests_sent() const { return requests_sent_; }
  uint64_t learned() const { return learned_; }

private:
  void drain_exceptions();
  void refresh(uint64_t now_ns);
  void want(const ip_addr& next_hop, side s, uint64_t now_ns);
  void send_request(const ip_addr& target, side s);
  bool on_side(const own_address& a, side s) const { return !cfg_.two_armed || a.on == s; }

  neighbour_manager_config cfg_;
  neighbour_table& table_;
  shm_region& shm_;
  uint64_t last_generation_ = ~0ull;
  uint64_t last_refresh_ns_ = 0;
  uint64_t last_stats_ns_ = 0;
  uint32_t last_backend_limit_ = 0;
  bool dirty_ = true;
  bool warned_no_tx_[2] = {false, false};
  std::map<ip_addr, uint64_t> last_request_ns_;
  std::set<ip_addr> warned_no_route_;
  uint64_t requests_sent_ = 0;
  uint64_t learned_ = 0;
};

uint64_t monotonic_ns();

} // namespace sluice::dp
