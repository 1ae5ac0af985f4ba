// ARP and IPv6 neighbour discovery packets: building requests and
// solicitations for the neighbour manager, and reading the (IP, MAC) a reply or
// advertisement carries. Answering requests for own addresses and VIPs happens
// in the worker pipeline; this file is the slow path's side.
#pragma once

#include <cstdint>
#include <optional>

#include <rte_mbuf.h>

#include "ip_addr.h"

namespace sluice::dp {

struct learned_neighbour {
  ip_addr ip;
  uint8_t mac[6];
};

// Extracts the sender (ARP reply or request, NA with target link-layer option,
// NS with source link-layer option) of an ARP/ND packet. nullopt when the packet
// is not one of those or is malformed. Handles one VLAN tag.
std::optional<learned_neighbour> parse_neighbour_packet(const uint8_t* frame, uint32_t len);

// Fills `m` (empty mbuf) with an ARP request (v4) or neighbour solicitation to
// the solicited-node multicast address (v6) asking for `target`, sent from
// `src_ip` / `src_mac`. Returns false when the families differ or the mbuf is too
// small.
bool build_neighbour_request(rte_mbuf* m, const ip_addr& target, const ip_addr& src_ip,
                             const uint8_t* src_mac);

} // namespace sluice::dp
