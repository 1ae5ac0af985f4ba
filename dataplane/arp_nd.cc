#include "arp_nd.h"

#include <cstring>

#include <rte_byteorder.h>

#include "checksum.h"
#include "packet_parse.h"
#include "packet_rewrite.h"

namespace sluice::dp {

std::optional<learned_neighbour> parse_neighbour_packet(const uint8_t* frame, uint32_t len) {
  parsed_packet p;
  parse_frame(frame, len, p);
  if (p.kind == packet_kind::arp) {
    if (len < uint32_t(p.l2_len) + 28)
      return std::nullopt;
    const uint8_t* a = frame + p.l2_len;
    if (load_be16(a) != 1 || load_be16(a + 2) != ethertype_ipv4 || a[4] != 6 || a[5] != 4)
      return std::nullopt;
    uint16_t op = load_be16(a + 6);
    if (op != 1 && op != 2)
      return std::nullopt;
    learned_neighbour n;
    n.ip = ip_addr::from_v4_be(ld32(a + 14));
    std::memcpy(n.mac, a + 8, 6);
    if (n.ip.v4_be() == 0)
      return std::nullopt; // ARP probe: no address to learn
    return n;
  }
  if (p.kind != packet_kind::ip || p.family != 6 || p.proto != proto_icmp6)
    return std::nullopt;
  if (p.icmp_type != 135 && p.icmp_type != 136)
    return std::nullopt;
  const uint8_t* l3 = frame + p.l3_off;
  const uint8_t* l4 = frame + p.l4_off;
  if (l3[v6_hlim] != 255 || p.l4_len < 24)
    return std::nullopt;
  // NA: the target is the advertised address; NS: the source is.
  uint8_t want_opt = p.icmp_type == 136 ? 2 : 1;
  learned_neighbour n;
  n.ip = p.icmp_type == 136 ? ip_addr::from_v6(l4 + 8) : ip_addr::from_v6(l3 + v6_src);
  if (n.ip.is_unspecified())
    return std::nullopt;
  uint32_t off = 24;
  while (off + 8 <= p.l4_len) {
    uint8_t type = l4[off];
    uint32_t olen = uint32_t(l4[off + 1]) * 8;
    if (olen == 0 || off + olen > p.l4_len)
      return std::nullopt;
    if (type == want_opt && olen >= 8) {
      std::memcpy(n.mac, l4 + off + 2, 6);
      return n;
    }
    off += olen;
  }
  return std::nullopt;
}

bool build_neighbour_request(rte_mbuf* m, const ip_addr& target, const ip_addr& src_ip,
                             const uint8_t* src_mac) {
  if (target.is_v4() != src_ip.is_v4())
    return false;
  if (target.is_v4()) {
    constexpr uint16_t len = 14 + 28;
    uint8_t* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, len));
    if (!f)
      return false;
    std::memset(f, 0xff, 6);
    std::memcpy(f + 6, src_mac, 6);
    st16(f + 12, rte_cpu_to_be_16(ethertype_arp));
    uint8_t* a = f + 14;
    st16(a, rte_cpu_to_be_16(1));
    st16(a + 2, rte_cpu_to_be_16(ethertype_ipv4));
    a[4] = 6;
    a[5] = 4;
    st16(a + 6, rte_cpu_to_be_16(1));
    std::memcpy(a + 8, src_mac, 6);
    std::memcpy(a + 14, src_ip.v4_ptr(), 4);
    std::memset(a + 18, 0, 6);
    std::memcpy(a + 24, target.v4_ptr(), 4);
    return true;
  }
  constexpr uint16_t icmp_len = 32; // NS + source link-layer option
  constexpr uint16_t len = 14 + 40 + icmp_len;
  uint8_t* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, len));
  if (!f)
    return false;
  // Solicited-node multicast address ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX.
  uint8_t snm[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0};
  std::memcpy(snm + 13, target.bytes.data() + 13, 3);
  f[0] = 0x33;
  f[1] = 0x33;
  std::memcpy(f + 2, snm + 12, 4);
  std::memcpy(f + 6, src_mac, 6);
  st16(f + 12, rte_cpu_to_be_16(ethertype_ipv6));
  uint8_t* l3 = f + 14;
  write_outer_v6(l3, 0, 0, icmp_len, proto_icmp6, src_ip.bytes.data(), snm);
  l3[v6_hlim] = 255;
  uint8_t* icmp = l3 + 40;
  std::memset(icmp, 0, icmp_len);
  icmp[0] = 135;
  std::memcpy(icmp + 8, target.bytes.data(), 16);
  icmp[24] = 1;
  icmp[25] = 1;
  std::memcpy(icmp + 26, src_mac, 6);
  uint32_t sum = v6_pseudo_sum(l3 + v6_src, l3 + v6_dst, icmp_len, proto_icmp6);
  st16(icmp + 2, csum_finish(csum_partial(icmp, icmp_len, sum)));
  return true;
}

} // namespace sluice::dp
