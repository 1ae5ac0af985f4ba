// Turning a received TCP segment, in place, into the balancer's own answer to
// its sender: an RST for a mid-flow packet without state, or a SYN-ACK
// carrying a SYN cookie. The answer goes from the packet's destination (the
// VIP) back to its source, with a fresh IP header (no IP options, TTL 64,
// DF), a TCP header with the given options and no payload, and full
// checksums (the segment is new: nothing to update incrementally). No
// allocation: the packet's own mbuf is reused and trimmed or grown.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>

#include <rte_byteorder.h>
#include <rte_mbuf.h>

#include "checksum.h"
#include "packet_parse.h"
#include "packet_rewrite.h"

namespace sluice::dp {

struct tcp_answer {
  uint32_t seq = 0; // host order
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  const uint8_t* options = nullptr; // whole 32-bit words
  uint8_t options_len = 0;          // multiple of 4, at most 40
};

// The RST that RFC 9293 (3.10.7.1) prescribes for a segment that belongs to no
// connection: seq = the segment's ACK when it has one; otherwise seq 0 and an
// ACK of everything the segment occupied.
inline tcp_answer rst_for(const uint8_t* l4, const parsed_packet& p) {
  tcp_answer a;
  uint32_t doff = uint32_t(l4[12] >> 4) * 4;
  uint32_t payload = p.l4_len > doff ? p.l4_len - doff : 0;
  if (p.tcp_flags & tcp_ack) {
    a.seq = rte_be_to_cpu_32(ld32(l4 + 8));
    a.flags = tcp_rst;
  } else {
    a.ack = rte_be_to_cpu_32(ld32(l4 + 4)) + payload + ((p.tcp_flags & tcp_syn) ? 1 : 0) +
            ((p.tcp_flags & tcp_fin) ? 1 : 0);
    a.flags = tcp_rst | tcp_ack;
  }
  return a;
}

// Rewrites the frame of `m` (parsed as `p`) into `a`, from the packet's
// destination to its source, leaving from `own_mac` (`reverse` false: same
// addresses, ports and MACs, only the TCP header and length change; `p` is
// then updated to describe the new segment). False when the mbuf cannot hold
// the answer (the caller drops the packet).
template <bool V6>
inline bool make_tcp_answer(rte_mbuf* m, parsed_packet& p, const tcp_answer& a,
                            const uint8_t* own_mac, bool reverse = true) {
  constexpr uint32_t ip_len = V6 ? 40 : 20;
  const uint32_t tcp_len = 20u + a.options_len;
  const uint32_t want = uint32_t(p.l2_len) + ip_len + tcp_len;
  uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
  const uint8_t* l3 = f + p.l3_off;
  const uint8_t* l4 = f + p.l4_off;
  // Everything read from the packet before anything is written over it.
  uint8_t src[16], dst[16];
  if constexpr (V6) {
    std::memcpy(src, l3 + v6_src, 16);
    std::memcpy(dst, l3 + v6_dst, 16);
  } else {
    std::memcpy(src, l3 + v4_src, 4);
    std::memcpy(dst, l3 + v4_dst, 4);
  }
  uint16_t sport = ld16(l4), dport = ld16(l4 + 2);
  if (!reverse) {
    std::swap(sport, dport);
    uint8_t t[16];
    std::memcpy(t, src, 16);
    std::memcpy(src, dst, 16);
    std::memcpy(dst, t, 16);
  }
  if (m->data_len < want) {
    if (!rte_pktmbuf_append(m, uint16_t(want - m->data_len)))
      return false;
    f = rte_pktmbuf_mtod(m, uint8_t*);
  } else if (m->data_len > want) {
    rte_pktmbuf_trim(m, uint16_t(m->data_len - want));
  }
  if (reverse) {
    std::memcpy(f, f + 6, 6);
    std::memcpy(f + 6, own_mac, 6);
  }
  uint8_t* ip = f + p.l2_len;
  uint8_t* tcp = ip + ip_len;
  st16(tcp, dport);
  st16(tcp + 2, sport);
  st32(tcp + 4, rte_cpu_to_be_32(a.seq));
  st32(tcp + 8, rte_cpu_to_be_32(a.ack));
  tcp[12] = uint8_t((tcp_len / 4) << 4);
  tcp[13] = a.flags;
  st16(tcp + 14, rte_cpu_to_be_16(a.window));
  st32(tcp + 16, 0); // checksum, urgent pointer
  if (a.options_len)
    std::memcpy(tcp + 20, a.options, a.options_len);
  uint32_t sum;
  if constexpr (V6) {
    st16(f + p.l2_len - 2, rte_cpu_to_be_16(ethertype_ipv6));
    write_outer_v6(ip, 0, 0, uint16_t(tcp_len), proto_tcp, dst, src);
    sum = v6_pseudo_sum(dst, src, tcp_len, proto_tcp);
  } else {
    write_outer_v4(ip, 0, uint16_t(ip_len + tcp_len), true, proto_tcp, ld32(dst), ld32(src));
    sum = v4_pseudo_sum(ld32(dst), ld32(src), uint16_t(tcp_len), proto_tcp);
  }
  st16(tcp + 16, csum_finish(csum_partial(tcp, tcp_len, sum)));
  p.l4_off = uint16_t(p.l2_len + ip_len);
  p.l3_len = uint16_t(ip_len + tcp_len);
  p.l4_len = uint16_t(tcp_len);
  p.tcp_flags = a.flags;
  p.ipv4_ihl = V6 ? p.ipv4_ihl : 20;
  p.ipv4_df = 1;
  std::swap(p.sport, p.dport);
  if (!reverse)
    std::swap(p.sport, p.dport);
  return true;
}

} // namespace sluice::dp
