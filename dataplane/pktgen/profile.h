// Traffic profiles of sluice-pktgen: what one YAML file describes (services
// under test, the balancer's NAT/encapsulation settings the checker needs, and
// the traffic items) and its validation. The same file feeds
// scripts/gen-lab-profiles.py (TRex / pktgen-dpdk / the dataplane's arguments),
// so every field here is documented in docs/benchmarking.md. IPv4 only: the
// generator's frame writer and checker do not build IPv6 yet.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ip_addr.h"
#include "result.h"
#include "shm_abi.h"

namespace sluice::pktgen {

struct backend_addr {
  uint32_t addr_be = 0;
  uint16_t port = 0; // host order
};

struct service_def {
  std::string name;
  uint32_t vip_be = 0;
  uint16_t port = 0; // host order
  uint8_t proto = 6; // 6 tcp, 17 udp
  abi::fwd_mode mode = abi::fwd_mode::nat;
  uint16_t gue_port = 6080;
  std::vector<backend_addr> backends;
};

enum class item_type : uint8_t { established, churn, syn_flood, ack_flood, udp_flood };
const char* item_type_name(item_type t);

enum class direction : uint8_t { forward, reverse, both };

// One traffic item. Rates are per second at scale 1.0 (the NDR search scales
// them); 0 means "as fast as the ports take".
struct traffic_item {
  item_type type = item_type::established;
  uint32_t service = 0; // index into profile::services
  double weight = 0;    // share of profile::rate_pps when that is set
  double rate = 0;      // packets/s (established, floods) or new connections/s (churn)
  // established
  uint32_t flows = 1;
  direction dir = direction::forward;
  std::vector<uint16_t> frame_sizes{64}; // on the wire with FCS, cycled per packet
  // churn
  uint32_t requests = 1;
  uint16_t request_bytes = 64;
  uint16_t response_bytes = 256;
  bool close_rst = false;
  uint32_t held_open = 0;
  // > 0: the handshake's ACK goes alone and the first request this much
  // later (a SYN proxy drops data until the backend side is open; real
  // clients retransmit it, the stateless clients wait instead).
  uint32_t request_delay_ms = 0;
  // derived: first global flow index of this item (client address/port space)
  uint64_t flow_base = 0;
  uint64_t flow_count = 0;
};

struct profile {
  std::string name;
  double duration_s = 5;
  double rate_pps = 0; // optional total, split over items by weight
  uint32_t drain_ms = 300;
  uint32_t clients_base_be = 0; // legitimate clients: base address and size
  uint32_t clients_size = 0;
  uint32_t spoofed_base_be = 0; // flood sources
  uint32_t spoofed_size = 0;
  std::vector<uint32_t> nat_pool_be;
  uint16_t nat_port_min = 1024, nat_port_max = 65535;
  uint32_t encap_src4_be = 0, encap_src4_mask_be = 0;
  std::vector<service_def> services;
  std::vector<traffic_item> items;
};

// The IMIX used for `frame: imix`: 64, 594 and 1518 bytes at 7:4:1.
extern const std::array<uint16_t, 12> imix_sizes;

// First client port of the flow space and ports per client address.
inline constexpr uint16_t client_port_base = 1024;
inline constexpr uint32_t client_ports = 64512;

// Loads and validates a profile; errors name the file and the field.
result<profile> load_profile(const std::string& path);

// MAC the balancer must use for a backend (its static neighbour entry):
// 02:b0 followed by the IPv4 address, so the checker knows which backend a
// frame was meant for from its destination MAC alone.
std::array<uint8_t, 6> backend_mac(uint32_t addr_be);

} // namespace sluice::pktgen
