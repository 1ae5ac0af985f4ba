// In-place header rewrites of the forwarding modes: NAT address/port rewrite
// with incremental checksum updates, and the outer headers of IPIP and GUE
// encapsulation. Plain inline functions over byte pointers, so the pipeline's
// per-mode paths compile into straight-line code. Every value read from or
// written to a packet is in network byte order; loads and stores go through
// memcpy because packet headers have no alignment guarantee.
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_byteorder.h>

#include "checksum.h"
#include "ip_addr.h"
#include "packet_parse.h"

namespace sluice::dp {

inline uint16_t ld16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t ld32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void st16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}
inline void st32(uint8_t* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}

// Offsets inside the IPv4 / IPv6 headers.
inline constexpr uint32_t v4_src = 12, v4_dst = 16, v4_csum = 10, v4_ttl = 8;
inline constexpr uint32_t v6_src = 8, v6_dst = 24, v6_hlim = 7;

// Where the L4 checksum sits, or 0 when the protocol has none we maintain.
inline uint32_t l4_csum_offset(uint8_t proto) {
  return proto == proto_tcp ? 16 : proto == proto_udp ? 6 : 0;
}

// Patches a 16-bit checksum field at `p` for a 32-bit or 16-bit change. UDP's
// "no checksum" (0, IPv4 only) is left alone.
inline void patch4(uint8_t* p, uint32_t from, uint32_t to, bool udp_zero_ok) {
  uint16_t c = ld16(p);
  if (udp_zero_ok && c == 0)
    return;
  csum_replace4(&c, from, to);
  if (udp_zero_ok)
    udp_csum_fixup_zero(&c);
  st16(p, c);
}
inline void patch2(uint8_t* p, uint16_t from, uint16_t to, bool udp_zero_ok) {
  uint16_t c = ld16(p);
  if (udp_zero_ok && c == 0)
    return;
  csum_replace2(&c, from, to);
  if (udp_zero_ok)
    udp_csum_fixup_zero(&c);
  st16(p, c);
}
inline void patch16(uint8_t* p, const uint8_t* from, const uint8_t* to) {
  uint16_t c = ld16(p);
  csum_replace16(&c, from, to);
  if (c == 0)
    c = 0xffff; // only reached for UDP/TCP over IPv6, where 0 is never valid
  st16(p, c);
}

// Rewrites the source (dst=false) or destination address and port of an IPv4
// TCP/UDP packet, patching the IP header checksum and the L4 checksum.
// `l4_avail` bytes of L4 header are present (8 is enough for UDP, 18 for TCP).
inline void rewrite_v4(uint8_t* l3, uint8_t* l4, uint8_t proto, bool dst, uint32_t addr_be,
                       uint16_t port_be, uint32_t l4_avail = 20) {
  uint8_t* a = l3 + (dst ? v4_dst : v4_src);
  uint32_t old_addr = ld32(a);
  uint8_t* pp = l4 + (dst ? 2 : 0);
  uint16_t old_port = ld16(pp);
  uint32_t cso = l4_csum_offset(proto);
  bool has_l4_csum = cso && l4_avail >= cso + 2;
  if (old_addr != addr_be) {
    st32(a, addr_be);
    patch4(l3 + v4_csum, old_addr, addr_be, false);
    if (has_l4_csum)
      patch4(l4 + cso, old_addr, addr_be, proto == proto_udp);
  }
  if (old_port != port_be) {
    st16(pp, port_be);
    if (has_l4_csum)
      patch2(l4 + cso, old_port, port_be, proto == proto_udp);
  }
}

inline void rewrite_v6(uint8_t* l3, uint8_t* l4, uint8_t proto, bool dst, const uint8_t* addr,
                       uint16_t port_be, uint32_t l4_avail = 20) {
  uint8_t* a = l3 + (dst ? v6_dst : v6_src);
  uint8_t old_addr[16];
  std::memcpy(old_addr, a, 16);
  uint8_t* pp = l4 + (dst ? 2 : 0);
  uint16_t old_port = ld16(pp);
  uint32_t cso = l4_csum_offset(proto);
  bool has_l4_csum = cso && l4_avail >= cso + 2;
  if (std::memcmp(old_addr, addr, 16) != 0) {
    std::memcpy(a, addr, 16);
    if (has_l4_csum)
      patch16(l4 + cso, old_addr, addr);
  }
  if (old_port != port_be) {
    st16(pp, port_be);
    if (has_l4_csum)
      patch2(l4 + cso, old_port, port_be, false);
  }
}

// Outer source address for encapsulation: the prefix with its host bits taken
// from the flow hash, so a backend's NIC spreads tunnelled flows over its
// queues (the outer 5-tuple otherwise never changes).
inline uint32_t encap_src_v4(const ip_prefix& pfx, uint32_t hash) {
  uint32_t base = rte_be_to_cpu_32(pfx.addr.v4_be());
  uint32_t len = pfx.prefix_len;
  uint32_t host_mask = len >= 32 ? 0 : (0xffffffffu >> len);
  return rte_cpu_to_be_32((base & ~host_mask) | (hash & host_mask));
}
inline void encap_src_v6(const ip_prefix& pfx, uint32_t hash, uint8_t* out) {
  std::memcpy(out, pfx.addr.bytes.data(), 16);
  // Host bits only in the last 32 bits (prefixes shorter than /96 still only
  // vary those: enough entropy for RSS).
  uint32_t len = pfx.prefix_len;
  uint32_t host_bits = len >= 128 ? 0 : (128 - len > 32 ? 32 : 128 - len);
  uint32_t host_mask = host_bits == 0 ? 0 : (host_bits == 32 ? 0xffffffffu : (1u << host_bits) - 1);
  uint32_t low = rte_be_to_cpu_32(ld32(out + 12));
  st32(out + 12, rte_cpu_to_be_32((low & ~host_mask) | (hash & host_mask)));
}

// Writes an outer IPv4 header (20 bytes) at `p`. The checksum is summed from
// the values in registers: reloading the freshly stored bytes would stall on
// store forwarding.
inline void write_outer_v4(uint8_t* p, uint8_t tos, uint16_t total_len, bool df, uint8_t proto,
                           uint32_t src_be, uint32_t dst_be) {
  uint16_t frag = df ? 0x4000 : 0;
  uint32_t src = rte_be_to_cpu_32(src_be), dst = rte_be_to_cpu_32(dst_be);
  uint32_t sum = (0x4500u | tos) + total_len + frag + (64u << 8 | proto) + (src >> 16) +
                 (src & 0xffff) + (dst >> 16) + (dst & 0xffff);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  uint64_t w0 = uint64_t(0x45) | uint64_t(tos) << 8 | uint64_t(rte_cpu_to_be_16(total_len)) << 16 |
                uint64_t(rte_cpu_to_be_16(frag)) << 48; // id = 0 in bytes 4..5
  uint32_t w1 = 64u | uint32_t(proto) << 8 | uint32_t(rte_cpu_to_be_16(uint16_t(~sum))) << 16;
  std::memcpy(p, &w0, 8);
  std::memcpy(p + 8, &w1, 4);
  st32(p + 12, src_be);
  st32(p + 16, dst_be);
}

// Writes an outer IPv6 header (40 bytes) at `p`. The flow label carries the
// flow hash (RFC 6438) for ECMP/RSS entropy.
inline void write_outer_v6(uint8_t* p, uint8_t tclass, uint32_t flow_label, uint16_t payload_len,
                           uint8_t next_header, const uint8_t* src, const uint8_t* dst) {
  uint32_t w = (6u << 28) | (uint32_t(tclass) << 20) | (flow_label & 0xfffff);
  st32(p, rte_cpu_to_be_32(w));
  st16(p + 4, rte_cpu_to_be_16(payload_len));
  p[6] = next_header;
  p[7] = 64;
  std::memcpy(p + 8, src, 16);
  std::memcpy(p + 24, dst, 16);
}

// Traffic class / TOS of an IP header.
inline uint8_t ip_tos(const uint8_t* l3, uint8_t family) {
  if (family == 4)
    return l3[1];
  return uint8_t((l3[0] << 4) | (l3[1] >> 4));
}

// Pseudo-header sum for IPv6 upper-layer checksums (RFC 8200 §8.1).
inline uint32_t v6_pseudo_sum(const uint8_t* src, const uint8_t* dst, uint32_t len, uint8_t nh) {
  uint32_t s = csum_partial(src, 16);
  s = csum_partial(dst, 16, s);
  uint64_t t = uint64_t(s) + rte_cpu_to_be_32(len) + rte_cpu_to_be_32(uint32_t(nh));
  t = (t & 0xffffffff) + (t >> 32);
  return uint32_t(t);
}
inline uint32_t v4_pseudo_sum(uint32_t src_be, uint32_t dst_be, uint16_t len, uint8_t proto) {
  uint64_t t = uint64_t(src_be & 0xffff) + (src_be >> 16) + (dst_be & 0xffff) + (dst_be >> 16) +
               rte_cpu_to_be_16(len) + rte_cpu_to_be_16(uint16_t(proto));
  while (t >> 32)
    t = (t & 0xffffffff) + (t >> 32);
  return uint32_t(t);
}

} // namespace sluice::dp
