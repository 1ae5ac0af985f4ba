// Header parsing for the packet path, on plain bytes so it runs (and is tested)
// without DPDK. It validates every length it relies on against the frame and
// never trusts a length field: the result either describes headers that lie
// entirely inside the frame or names the drop reason. A UDP length field must
// equal the IP payload length (udp_bad_length otherwise). One VLAN tag is accepted;
// IPv6 hop-by-hop, routing and destination-options headers are skipped.
#pragma once

#include <cstdint>
#include <cstring>

#include "counters.h"

namespace sluice {

inline uint16_t load_be16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}
inline uint32_t load_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

inline constexpr uint16_t ethertype_ipv4 = 0x0800;
inline constexpr uint16_t ethertype_ipv6 = 0x86dd;
inline constexpr uint16_t ethertype_arp = 0x0806;
inline constexpr uint16_t ethertype_vlan = 0x8100;
inline constexpr uint16_t ethertype_qinq = 0x88a8;

inline constexpr uint8_t proto_icmp = 1;
inline constexpr uint8_t proto_ipip = 4;
inline constexpr uint8_t proto_tcp = 6;
inline constexpr uint8_t proto_udp = 17;
inline constexpr uint8_t proto_ipv6 = 41;
inline constexpr uint8_t proto_icmp6 = 58;

inline constexpr uint8_t tcp_fin = 0x01;
inline constexpr uint8_t tcp_syn = 0x02;
inline constexpr uint8_t tcp_rst = 0x04;
inline constexpr uint8_t tcp_ack = 0x10;

enum class packet_kind : uint8_t { ip, arp, drop };

struct parsed_packet {
  packet_kind kind = packet_kind::drop;
  drop_reason reason = drop_reason::count; // when kind == drop
  uint8_t family = 0;                      // 4 or 6
  uint8_t proto = 0;                       // final L4 protocol
  uint8_t tcp_flags = 0;
  uint8_t ipv4_df = 0; // IPv4 don't-fragment bit
  uint16_t l2_len = 0; // Ethernet (+ VLAN) header bytes
  uint16_t l3_off = 0; // == l2_len
  uint16_t l4_off = 0; // first byte after IP (and extension) headers
  uint16_t l3_len = 0; // IP total length (v4) / 40 + payload length (v6)
  uint16_t l4_len = 0; // bytes of L4 header + payload inside l3_len
  uint16_t sport = 0;  // network order (TCP/UDP); ICMP: 0
  uint16_t dport = 0;  // network order
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint16_t ipv4_ihl = 0; // IPv4 header bytes (20..60)
};

inline void parse_drop(parsed_packet& p, drop_reason r) {
  p.kind = packet_kind::drop;
  p.reason = r;
}

// Parses L3/L4 starting at `l3` with `avail` bytes left in the frame. Used for
// the outer packet and, with allow_partial_l4, for the header quoted inside an
// ICMP error (where only the first 8 bytes of L4 are guaranteed and the IP
// length field describes the original, untruncated packet).
inline void parse_l3(const uint8_t* l3, uint32_t avail, uint16_t ethertype, parsed_packet& p,
                     bool quoted = false) {
  uint32_t l4_off_rel;
  uint32_t l3_len;
  if (ethertype == ethertype_ipv4) {
    if (avail < 20)
      return parse_drop(p, drop_reason::ipv4_truncated);
    uint8_t vihl = l3[0];
    uint32_t ihl = uint32_t(vihl & 0x0f) * 4;
    if ((vihl >> 4) != 4 || ihl < 20)
      return parse_drop(p, drop_reason::ipv4_bad_header);
    l3_len = load_be16(l3 + 2);
    if (ihl > avail)
      return parse_drop(p, quoted ? drop_reason::icmp_bad_inner : drop_reason::ipv4_bad_length);
    if (!quoted && (l3_len > avail || l3_len < ihl))
      return parse_drop(p, drop_reason::ipv4_bad_length);
    if (quoted && l3_len < ihl)
      return parse_drop(p, drop_reason::icmp_bad_inner);
    uint16_t frag = load_be16(l3 + 6);
    if ((frag & 0x1fff) != 0 || (frag & 0x2000) != 0)
      return parse_drop(p, drop_reason::ipv4_fragment);
    p.ipv4_df = (frag & 0x4000) ? 1 : 0;
    p.family = 4;
    p.proto = l3[9];
    p.ipv4_ihl = uint16_t(ihl);
    l4_off_rel = ihl;
  } else {
    if (avail < 40)
      return parse_drop(p, drop_reason::ipv6_truncated);
    if ((l3[0] >> 4) != 6)
      return parse_drop(p, drop_reason::ipv6_truncated);
    l3_len = 40u + load_be16(l3 + 4);
    if (!quoted && l3_len > avail)
      return parse_drop(p, drop_reason::ipv6_bad_length);
    uint8_t nh = l3[6];
    uint32_t off = 40;
    uint32_t limit = quoted ? avail : l3_len;
    // Hop-by-hop (0), routing (43), destination options (60): skip, bounded.
    for (int i = 0; i < 4 && (nh == 0 || nh == 43 || nh == 60); ++i) {
      if (off + 8 > limit)
        return parse_drop(p, drop_reason::ipv6_bad_ext_header);
      uint8_t next = l3[off];
      off += (uint32_t(l3[off + 1]) + 1) * 8;
      nh = next;
    }
    if (nh == 0 || nh == 43 || nh == 60 || off > limit)
      return parse_drop(p, drop_reason::ipv6_bad_ext_header);
    if (nh == 44)
      return parse_drop(p, drop_reason::ipv6_fragment);
    p.family = 6;
    p.proto = nh;
    l4_off_rel = off;
  }
  p.l3_len = uint16_t(l3_len);
  uint32_t l4_avail = quoted ? (avail > l4_off_rel ? avail - l4_off_rel : 0) : l3_len - l4_off_rel;
  p.l4_len = uint16_t(quoted ? 0 : l4_avail);
  p.l4_off = uint16_t(p.l3_off + l4_off_rel);
  const uint8_t* l4 = l3 + l4_off_rel;
  switch (p.proto) {
  case proto_tcp:
    if (quoted) {
      if (l4_avail < 8)
        return parse_drop(p, drop_reason::icmp_bad_inner);
    } else {
      if (l4_avail < 20)
        return parse_drop(p, drop_reason::l4_truncated);
      uint32_t doff = uint32_t(l4[12] >> 4) * 4;
      if (doff < 20 || doff > l4_avail)
        return parse_drop(p, drop_reason::tcp_bad_offset);
      p.tcp_flags = l4[13];
    }
    std::memcpy(&p.sport, l4, 2);
    std::memcpy(&p.dport, l4 + 2, 2);
    break;
  case proto_udp:
    if (l4_avail < 8)
      return parse_drop(p, quoted ? drop_reason::icmp_bad_inner : drop_reason::l4_truncated);
    // RFC 768 lets the UDP length be shorter than the IP payload (trailing
    // bytes are not part of the datagram); we require it to be exactly the IP
    // payload: a shorter one would forward bytes the backend ignores (and in
    // `nat` mode spend a port on a malformed datagram), a longer one claims
    // bytes that are not there. A quoted header (ICMP error) is not checked:
    // its IP length describes the original, untruncated packet.
    if (!quoted && load_be16(l4 + 4) != l4_avail)
      return parse_drop(p, drop_reason::udp_bad_length);
    std::memcpy(&p.sport, l4, 2);
    std::memcpy(&p.dport, l4 + 2, 2);
    break;
  case proto_icmp:
  case proto_icmp6:
    if (l4_avail < 8)
      return parse_drop(p, quoted ? drop_reason::icmp_bad_inner : drop_reason::l4_truncated);
    p.icmp_type = l4[0];
    p.icmp_code = l4[1];
    // Echo identifier acts as the "port" for echo request/reply.
    std::memcpy(&p.sport, l4 + 4, 2);
    break;
  default:
    return parse_drop(p, quoted ? drop_reason::icmp_bad_inner : drop_reason::unsupported_l4);
  }
  p.kind = packet_kind::ip;
}

// Parses a whole Ethernet frame of `len` bytes.
inline void parse_frame(const uint8_t* frame, uint32_t len, parsed_packet& p) {
  if (len < 14)
    return parse_drop(p, drop_reason::eth_truncated);
  uint16_t et = load_be16(frame + 12);
  uint32_t l2 = 14;
  if (et == ethertype_vlan || et == ethertype_qinq) {
    if (len < 18)
      return parse_drop(p, drop_reason::eth_truncated);
    et = load_be16(frame + 16);
    l2 = 18;
  }
  p.l2_len = uint16_t(l2);
  p.l3_off = uint16_t(l2);
  if (et == ethertype_arp) {
    p.kind = packet_kind::arp;
    return;
  }
  if (et != ethertype_ipv4 && et != ethertype_ipv6)
    return parse_drop(p, drop_reason::unknown_ethertype);
  parse_l3(frame + l2, len - l2, et, p);
}

} // namespace sluice
