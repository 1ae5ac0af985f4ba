// rte_flow rules that make the NIC deliver both directions of a `dnat` flow
// to its owner worker, so that dnat needs no software handoff on NICs that
// can hash a subset of the 5-tuple.
//
// The owner of a dnat flow is the RETA entry of the Toeplitz hash of (client
// address, client port) (pipeline_steering.cc). A client's packet carries that
// pair as its source, the backend's reply as its destination, so two rules per
// endpoint suffice, each an RSS action with Sluice's key and the model's RETA
// as its queue list:
//   * to the VIP (match destination address, protocol and port): hash the
//     source address and port only (RTE_ETH_RSS_L3_SRC_ONLY | L4_SRC_ONLY);
//   * from a backend (match source address, protocol and port): hash the
//     destination address and port only (L3_DST_ONLY | L4_DST_ONLY).
// Either way the NIC hashes the bytes (client address, client port), which is
// what the software model hashes, and the pipeline's ownership check finds
// every packet already on its owner's queue.
//
// Trade-offs: one rule per dnat service and per dnat backend instead of one per
// flow (DPVS-style per-flow or per-port-range rules do not fit dnat, whose reply
// tuple the balancer cannot choose). Rules follow the published tables: the
// main lcore reconciles them when the generation changes, so a new backend's
// replies may be handed off in software for up to one neighbour-manager poll.
// Support is decided once at start-up with rte_flow_validate on every port
// (virtual PMDs such as net_pcap, net_ring and net_memif have no rte_flow): if
// any port refuses, no rule is installed and dnat stays on software handoff.
// A rule refused later (table full) is counted and its traffic handed off.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rte_ethdev.h>
#include <rte_flow.h>

#include "ip_addr.h"
#include "table_view.h"

namespace sluice::dp {

// One side of a dnat service the NIC must recognise.
struct dnat_endpoint {
  ip_addr addr;      // VIP or backend address
  uint16_t port;     // host order
  uint8_t proto;     // IPPROTO_TCP or IPPROTO_UDP
  bool from_backend; // false: traffic to the VIP; true: replies from the backend

  bool operator==(const dnat_endpoint&) const = default;
  auto operator<=>(const dnat_endpoint&) const = default;
};

// The endpoints of every dnat service and of its in-use (or retired: flows
// still live) backends in a published slot, sorted and without duplicates.
std::vector<dnat_endpoint> dnat_endpoints(const table_view& v, uint32_t max_services,
                                          uint32_t max_backends);

// One rte_flow rule and the storage its pointers refer to. Not copyable: the
// items and actions point into the object itself.
struct dnat_flow_rule {
  rte_flow_attr attr{};
  rte_flow_item items[4]{}; // ETH, IPV4/IPV6, TCP/UDP, END
  rte_flow_item_ipv4 ip4_spec{}, ip4_mask{};
  rte_flow_item_ipv6 ip6_spec{}, ip6_mask{};
  rte_flow_item_tcp tcp_spec{}, tcp_mask{};
  rte_flow_item_udp udp_spec{}, udp_mask{};
  rte_flow_action actions[2]{}; // RSS, END
  rte_flow_action_rss rss{};
  std::array<uint8_t, 40> key{};
  std::vector<uint16_t> queues;

  dnat_flow_rule() = default;
  dnat_flow_rule(const dnat_flow_rule&) = delete;
  dnat_flow_rule& operator=(const dnat_flow_rule&) = delete;
};

// Builds the rule steering `e` by the client's fields with Toeplitz `key` over
// `reta` (the queue list: entry i is the queue of hash % reta.size()).
std::unique_ptr<dnat_flow_rule> build_dnat_rule(const dnat_endpoint& e,
                                                const std::array<uint8_t, 40>& key,
                                                const std::vector<uint16_t>& reta);

// The queue list 0..n_workers-1 when it selects, for every hash, the queue
// `reta` selects (reta[i] = i % n_workers and n_workers divides its size);
// empty otherwise. Offered to drivers that refuse a queue listed twice.
std::vector<uint16_t> short_queue_list(const std::vector<uint16_t>& reta, uint16_t n_workers);

// Which way dnat reaches its owner, for the start-up line and telemetry.
enum class dnat_steering_mode : uint8_t { none, rte_flow, handoff };
const char* dnat_steering_name(dnat_steering_mode m);

// The rules of one dataplane: decided at start-up, reconciled with the
// published tables by the main lcore. Not thread-safe; main lcore only.
class dnat_flow_steering {
public:
  struct port_side {
    uint16_t port_id = 0;
    bool client = true;  // receives traffic to the VIPs
    bool backend = true; // receives the backends' replies
  };

  // With fewer than two workers there is nothing to steer (mode none).
  // Otherwise validates a VIP-side and a backend-side rule on every port, with
  // the RETA as the queue list, then with short_queue_list(reta) if that is
  // equivalent: rte_flow when all pass with one list, handoff (with the first
  // refusal in reason()) if not.
  static dnat_flow_steering probe(const std::vector<port_side>& ports, uint16_t n_workers,
                                  const std::array<uint8_t, 40>& key,
                                  const std::vector<uint16_t>& reta);

  dnat_flow_steering() = default;
  dnat_flow_steering(dnat_flow_steering&&) = default;
  dnat_flow_steering& operator=(dnat_flow_steering&&) = default;
  ~dnat_flow_steering() { remove_all(); }

  dnat_steering_mode mode() const { return mode_; }
  const std::string& reason() const { return reason_; }
  // Start-up line fragment, e.g. "rte_flow (RSS on the client's address and
  // port)" or "software handoff (port 0: rte_flow_validate: Function not
  // implemented)".
  std::string describe() const;

  // Installs the rules `want` needs and destroys those it no longer names
  // (rte_flow mode only). Returns false when a rule was refused.
  bool sync(const std::vector<dnat_endpoint>& want);
  void remove_all();
  size_t installed() const { return rules_.size(); }
  uint64_t refused() const { return refused_; }

private:
  struct installed_rule {
    dnat_endpoint e;
    uint16_t port_id;
    rte_flow* flow;
  };
  dnat_steering_mode mode_ = dnat_steering_mode::none;
  std::string reason_;
  std::vector<port_side> ports_;
  std::array<uint8_t, 40> key_{};
  std::vector<uint16_t> reta_;
  std::vector<installed_rule> rules_;
  uint64_t refused_ = 0;
};

} // namespace sluice::dp
