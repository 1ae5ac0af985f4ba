// The per-worker packet pipeline: everything between rx_burst and tx_burst for
// one worker core, run to completion. It owns the worker's flow tables and NAT
// port state, reads the published tables through a table_view loaded once per
// burst, and writes only its own stats block. The worker loop (worker_loop.cc),
// the packet tests and sluice-bench all drive the same object, so what the tests
// and the benchmark measure is what forwards traffic.
//
// Contract of process(): every input mbuf ends up in exactly one of the outputs
// (tx towards the client side, tx towards the backend side, dropped, exception,
// or handed to another worker's ring). The pipeline never frees an mbuf; it
// allocates one only to reset a flow whose backend went down (the RST to the
// client), from the pool of the packet that triggered it. The caller transmits,
// frees (dropped) or queues (exception).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include "flow_sync_record.h"
#include "ip_addr.h"
#include "neighbour_table.h"
#include "result.h"
#include "shm_region.h"

namespace sluice::dp {

inline constexpr uint16_t max_burst = 64;

// Which side of the balancer a packet leaves on. In a one-armed layout both
// sides are the same DPDK port.
enum side : uint8_t { client_side = 0, backend_side = 1 };

struct own_address {
  ip_prefix prefix; // address and on-link prefix length
  side on = client_side;
};

// Software model of the NIC's RSS, used to find a flow's owner worker when the
// driver cannot hash (virtual ports) and to choose full-NAT source ports whose
// replies land on this worker.
struct steering_config {
  // Informational: whether the ports' own RSS could not be used. With more than
  // one worker the pipeline always verifies ownership in software (the owner is
  // a function of the client's address and port, which a 5-tuple RSS does not
  // compute) and hands misdelivered packets to their owner.
  bool software = false;
  // Toeplitz key; the default is the well-known key of the Microsoft RSS spec.
  std::array<uint8_t, 40> rss_key = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
                                     0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
                                     0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
                                     0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};
  std::vector<uint16_t> reta; // redirection table: entry → worker id (default i % workers)
};

struct pipeline_config {
  uint16_t worker_id = 0;
  uint16_t n_workers = 1;
  std::array<uint8_t, 6> mac[2]{};    // own MAC per side
  std::vector<own_address> addresses; // own addresses (answer ARP/ND/ping)
  std::vector<ip_addr> nat_pool;      // full-NAT source addresses (v4 and/or v6)
  std::vector<ip_addr> gateways[2];   // default next hops per side (v4 and/or v6)
  ip_prefix encap_src4;               // outer source prefix for 4in4 / GUE over v4
  ip_prefix encap_src6;               // outer source prefix for 6in6, 4in6 / GUE over v6
  uint16_t mtu = 1500;                // egress L3 MTU (both sides)
  uint32_t flow_capacity = 1u << 20;  // IPv4 flow table entries per worker
  uint32_t flow_capacity6 = 0;        // IPv6 entries per worker; 0 = flow_capacity
  // The expiry sweep walks every table position once per cycle, spread over
  // the cycle at most once per millisecond (idle entries are also expired
  // lazily when their next packet arrives, so this only bounds reclamation).
  uint32_t sweep_cycle_ms = 2000;
  uint32_t affinity_capacity = 1u << 20; // sh: client prefixes remembered (shared by workers)
  uint16_t nat_port_min = 1024;          // full-NAT source port range
  uint16_t nat_port_max = 65535;
  // New-flow admission (flow_limits.h): client prefixes remembered per worker
  // for the services' client rates, and the worker's global new-flow budget
  // (new flows per second for the whole balancer, divided among workers; 0 =
  // none; burst 0 = one second's worth).
  uint32_t client_limit_entries = 65536;
  uint32_t new_flow_budget = 0;
  uint32_t new_flow_budget_burst = 0;
  // Mid-flow RSTs (nat packets without state) per second for the whole
  // balancer, each worker taking 1/n, at most one second's worth at once; 0 =
  // unlimited. An ACK flood would otherwise be reflected one RST per packet.
  uint32_t mid_flow_rst_rate = 10000;
  steering_config steering;
  int socket_id = 0; // NUMA node for the flow tables
};

// What one process() call produced. Arrays are sized for max_burst inputs.
struct burst_output {
  // A packet can produce two (a flow reset answers both ways), hence 2x.
  rte_mbuf* tx[2][2 * max_burst];
  uint16_t n_tx[2] = {0, 0};
  rte_mbuf* dropped[max_burst];
  uint16_t n_dropped = 0;
  // ARP replies, neighbour advertisements and other packets for the neighbour
  // manager on the main lcore.
  rte_mbuf* exception[max_burst];
  uint16_t n_exception = 0;

  void clear() {
    n_tx[0] = n_tx[1] = 0;
    n_dropped = 0;
    n_exception = 0;
  }
};

class pipeline_impl;

// One tracked flow as introspection (`sluicectl conns`) reports it.
struct flow_row {
  ip_addr client;
  ip_addr vip;
  uint16_t client_port = 0; // host order
  uint16_t vip_port = 0;
  uint8_t proto = 0;
  uint8_t state = 0; // flow_state (tcp_fsm.h)
  uint8_t mode = 0;  // abi::fwd_mode
  uint16_t worker = 0;
  uint16_t service = 0;
  uint32_t backend = 0; // backend slot
  uint32_t idle_ms = 0;
};

// Which flows list_flows returns; negative fields match anything.
struct flow_filter {
  int32_t service = -1; // service index
  int64_t backend = -1; // backend slot
  int16_t state = -1;   // tcp_state
  std::optional<ip_prefix> client;
};
inline constexpr uint64_t flow_cursor_end = ~0ull;

class pipeline {
public:
  // `handoff_rings[w]` is worker w's inbound ring (may be empty when
  // steering.software is false). The shm_region and neighbour table must
  // outlive the pipeline.
  static result<std::unique_ptr<pipeline>> create(const pipeline_config& cfg, shm_region& shm,
                                                  const neighbour_table& neighbours,
                                                  std::vector<rte_ring*> handoff_rings);
  ~pipeline();

  // Loads the published generation (once per burst) and acknowledges it.
  // Call once per loop iteration, also when idle, so publications complete.
  void begin_burst(uint64_t now_tsc);

  // Processes up to max_burst packets received on `rx_side`. `from_handoff`
  // marks packets another worker passed to this one (ownership is not checked
  // again). Outputs are appended to `out`.
  void process(rte_mbuf** pkts, uint16_t n, side rx_side, bool from_handoff, burst_output& out);

  // Bounded expiry sweep; call once per loop iteration.
  void housekeeping(uint64_t now_tsc);

  // Counts packets the caller failed to transmit (tx ring full) and similar.
  void count_drop(drop_reason r, uint32_t n);
  void count_tx(uint32_t packets, uint64_t bytes);
  void count_idle_sleep();
  void count_poll(bool empty);

  // Marks the worker live/not live in shared memory (ack line).
  void set_live(bool live);

  uint64_t flows_active() const;

  // Appends this worker's tracked flows that match `filter` to `out`, starting
  // at table position `cursor` (0 = the start; positions run over the IPv4
  // table, then the IPv6 one), until `out` holds `max` rows. Returns the
  // position to resume from, or flow_cursor_end when the tables are done: a
  // caller pages through any number of flows in bounded replies. Safe to call
  // from another thread while the worker forwards: every row is read under its
  // bucket's sequence counter (flow_table.h), so no lock and no registration
  // are needed; `reader_id` is kept for API stability and ignored. A row may
  // be a moment old; it is never torn across two flows.
  uint64_t list_flows(std::vector<flow_row>& out, size_t max, const flow_filter& filter,
                      uint64_t cursor, uint32_t reader_id) const;
  // Flow hand-over (flow_sync_record.h, hitless restart). Appends every live
  // flow of this worker to `out`; only while the worker is not running.
  void export_flows(std::vector<flow_sync_record>& out) const;
  // Adopts records into this worker's tables as if it had created the flows
  // (entries, NAT port lease, gauges, remaining timeout); what cannot be
  // adopted is counted in `sum` and in flows_adopt_refused. Only on the
  // worker's own thread or before it starts, after begin_burst loaded the
  // generation the records are resolved against.
  void adopt_flows(const flow_sync_record* recs, size_t n, adopt_summary& sum);
  // The worker of this process that must hold the flow of `r`: the steering
  // rule of its mode (docs/dataplane.md, "Steering").
  uint16_t owner_of_flow(const flow_sync_record& r) const;
  pipeline_impl& impl() { return *impl_; }

private:
  explicit pipeline(std::unique_ptr<pipeline_impl> impl);
  std::unique_ptr<pipeline_impl> impl_;
};

} // namespace sluice::dp
