// Builds test frames byte by byte with an independent checksum routine (a
// plain RFC 1071 loop over big-endian words, deliberately not the dataplane's
// common/checksum.h), so a checksum bug in the pipeline cannot hide behind the
// same bug in the expected packet.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ip_addr.h"

namespace sluice::test {

using bytes = std::vector<uint8_t>;
using mac_t = std::array<uint8_t, 6>;

inline uint16_t ref_checksum(const bytes& data, uint32_t pseudo_sum = 0) {
  uint64_t sum = pseudo_sum;
  for (size_t i = 0; i < data.size(); i += 2) {
    uint16_t w = uint16_t(data[i] << 8);
    if (i + 1 < data.size())
      w |= data[i + 1];
    sum += w;
  }
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum & 0xffff);
}

inline void put16(bytes& b, size_t off, uint16_t v) {
  b[off] = uint8_t(v >> 8);
  b[off + 1] = uint8_t(v);
}
inline void put32(bytes& b, size_t off, uint32_t v) {
  put16(b, off, uint16_t(v >> 16));
  put16(b, off + 2, uint16_t(v));
}
inline uint16_t get16(const bytes& b, size_t off) {
  return uint16_t(b[off] << 8 | b[off + 1]);
}

inline ip_addr ip(const char* s) {
  return *parse_ip(s);
}
inline mac_t mac(const char* s) {
  return *parse_mac(s);
}

inline bytes concat(bytes a, const bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// L4 headers with a zero checksum; ip4()/ip6() fill it in.
inline bytes tcp(uint16_t sport, uint16_t dport, uint8_t flags, const bytes& payload = {},
                 uint32_t seq = 1000, uint32_t ack = 0, uint8_t data_offset_words = 5) {
  bytes b(20, 0);
  put16(b, 0, sport);
  put16(b, 2, dport);
  put32(b, 4, seq);
  put32(b, 8, ack);
  b[12] = uint8_t(data_offset_words << 4);
  b[13] = flags;
  put16(b, 14, 65535);
  return concat(b, payload);
}

inline bytes udp(uint16_t sport, uint16_t dport, const bytes& payload = {}) {
  bytes b(8, 0);
  put16(b, 0, sport);
  put16(b, 2, dport);
  put16(b, 4, uint16_t(8 + payload.size()));
  return concat(b, payload);
}

// ICMP / ICMPv6 header: type, code, 4 bytes of "rest", then body.
inline bytes icmp(uint8_t type, uint8_t code, uint32_t rest, const bytes& body = {}) {
  bytes b(8, 0);
  b[0] = type;
  b[1] = code;
  put32(b, 4, rest);
  return concat(b, body);
}

struct ip4_opts {
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0;
  bool df = true;
  bool more_fragments = false;
  uint16_t frag_offset = 0;
  bytes options;         // multiple of 4 bytes
  bool l4_csum = true;   // compute TCP/UDP/ICMP checksum
  int total_length = -1; // override (malformed packets)
  int ihl_words = -1;    // override (malformed packets)
};

inline uint32_t v4_pseudo(const ip_addr& s, const ip_addr& d, uint8_t proto, size_t len) {
  const uint8_t* a = s.v4_ptr();
  const uint8_t* c = d.v4_ptr();
  return uint32_t(a[0] << 8 | a[1]) + uint32_t(a[2] << 8 | a[3]) + uint32_t(c[0] << 8 | c[1]) +
         uint32_t(c[2] << 8 | c[3]) + proto + uint32_t(len);
}

inline uint32_t v6_pseudo(const ip_addr& s, const ip_addr& d, uint8_t nh, size_t len) {
  uint32_t sum = 0;
  for (int i = 0; i < 16; i += 2) {
    sum += uint32_t(s.bytes[i] << 8 | s.bytes[i + 1]);
    sum += uint32_t(d.bytes[i] << 8 | d.bytes[i + 1]);
  }
  return sum + uint32_t(len >> 16) + uint32_t(len & 0xffff) + nh;
}

inline void fill_l4_csum(bytes& l4, uint8_t proto, uint32_t pseudo, bool v6) {
  size_t off = proto == 6 ? 16 : proto == 17 ? 6 : (proto == 1 || proto == 58) ? 2 : 0;
  if (!off || l4.size() < off + 2)
    return;
  put16(l4, off, 0);
  uint16_t c = ref_checksum(l4, proto == 1 ? 0 : pseudo);
  if (proto == 17 && c == 0)
    c = 0xffff;
  (void)v6;
  put16(l4, off, c);
}

inline bytes ip4(const ip_addr& src, const ip_addr& dst, uint8_t proto, bytes l4,
                 const ip4_opts& o = {}) {
  if (o.l4_csum)
    fill_l4_csum(l4, proto, v4_pseudo(src, dst, proto, l4.size()), false);
  size_t hlen = 20 + o.options.size();
  bytes h(hlen, 0);
  h[0] = uint8_t(0x40 | (o.ihl_words >= 0 ? o.ihl_words : int(hlen / 4)));
  h[1] = o.tos;
  put16(h, 2, uint16_t(o.total_length >= 0 ? o.total_length : int(hlen + l4.size())));
  put16(h, 4, o.id);
  put16(h, 6, uint16_t((o.df ? 0x4000 : 0) | (o.more_fragments ? 0x2000 : 0) | o.frag_offset));
  h[8] = o.ttl;
  h[9] = proto;
  std::copy(src.v4_ptr(), src.v4_ptr() + 4, h.begin() + 12);
  std::copy(dst.v4_ptr(), dst.v4_ptr() + 4, h.begin() + 16);
  std::copy(o.options.begin(), o.options.end(), h.begin() + 20);
  put16(h, 10, ref_checksum(h));
  return concat(h, l4);
}

struct ip6_opts {
  uint8_t hlim = 64;
  uint8_t tclass = 0;
  uint32_t flow_label = 0;
  bool l4_csum = true;
  bytes ext; // extension headers placed before L4 (ext_first_nh names the first)
  uint8_t ext_first_nh = 0;
};

inline bytes ip6(const ip_addr& src, const ip_addr& dst, uint8_t nh, bytes l4,
                 const ip6_opts& o = {}) {
  if (o.l4_csum)
    fill_l4_csum(l4, nh, v6_pseudo(src, dst, nh, l4.size()), true);
  bytes h(40, 0);
  uint32_t w = (6u << 28) | (uint32_t(o.tclass) << 20) | (o.flow_label & 0xfffff);
  put32(h, 0, w);
  put16(h, 4, uint16_t(o.ext.size() + l4.size()));
  h[6] = o.ext.empty() ? nh : o.ext_first_nh;
  h[7] = o.hlim;
  std::copy(src.bytes.begin(), src.bytes.end(), h.begin() + 8);
  std::copy(dst.bytes.begin(), dst.bytes.end(), h.begin() + 24);
  return concat(concat(h, o.ext), l4);
}

inline bytes eth(const mac_t& dst, const mac_t& src, uint16_t ethertype, const bytes& l3,
                 int vlan = -1) {
  bytes b(dst.begin(), dst.end());
  b.insert(b.end(), src.begin(), src.end());
  if (vlan >= 0) {
    b.push_back(0x81);
    b.push_back(0x00);
    b.push_back(uint8_t(vlan >> 8));
    b.push_back(uint8_t(vlan));
  }
  b.push_back(uint8_t(ethertype >> 8));
  b.push_back(uint8_t(ethertype));
  return concat(b, l3);
}

inline bytes arp(uint16_t op, const mac_t& sha, const ip_addr& spa, const mac_t& tha,
                 const ip_addr& tpa) {
  bytes b(28, 0);
  put16(b, 0, 1);
  put16(b, 2, 0x0800);
  b[4] = 6;
  b[5] = 4;
  put16(b, 6, op);
  std::copy(sha.begin(), sha.end(), b.begin() + 8);
  std::copy(spa.v4_ptr(), spa.v4_ptr() + 4, b.begin() + 14);
  std::copy(tha.begin(), tha.end(), b.begin() + 18);
  std::copy(tpa.v4_ptr(), tpa.v4_ptr() + 4, b.begin() + 24);
  return b;
}

inline std::string hex(const bytes& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i && i % 16 == 0)
      s += '\n';
    else if (i)
      s += ' ';
    s += d[b[i] >> 4];
    s += d[b[i] & 15];
  }
  return s;
}

} // namespace sluice::test
