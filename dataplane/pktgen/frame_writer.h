// Writes the Ethernet/IPv4/TCP|UDP frames sluice-pktgen sends, with valid
// checksums, into mbuf data. Inline and allocation-free: it runs for every
// generated packet. Payload bytes after the caller's head (the stamp) are zero,
// so the checksum only sums the headers and the head. IPv4 with DF and TTL 64;
// the checker relies on the TTL arriving unchanged.
#pragma once

#include <arpa/inet.h>
#include <cstdint>
#include <cstring>

#include "checksum.h"
#include "packet_parse.h"

namespace sluice::pktgen {

inline constexpr uint8_t sent_ttl = 64;
inline constexpr uint32_t eth_len = 14, ip_len = 20, tcp_len = 20, udp_len = 8;

struct frame_spec {
  const uint8_t* dst_mac = nullptr;
  const uint8_t* src_mac = nullptr;
  uint32_t src_be = 0, dst_be = 0;
  uint16_t sport = 0, dport = 0; // host order
  uint8_t proto = proto_tcp;
  uint8_t tcp_flags = 0;
  uint32_t seq = 0, ack = 0; // host order
  const uint8_t* head = nullptr;
  uint16_t head_len = 0;
  uint16_t payload_len = 0; // >= head_len
};

// Headers of a frame of `proto` without payload.
inline uint32_t header_bytes(uint8_t proto) {
  return eth_len + ip_len + (proto == proto_tcp ? tcp_len : udp_len);
}

// L4 checksum of an IPv4 packet with `l4_bytes` of L4 header and payload, of
// which only the first `summed` can be non-zero.
inline uint16_t l4_checksum_v4(uint32_t src_be, uint32_t dst_be, uint8_t proto, const uint8_t* l4,
                               uint32_t l4_bytes, uint32_t summed) {
  uint64_t s = uint64_t(src_be & 0xffff) + (src_be >> 16) + (dst_be & 0xffff) + (dst_be >> 16) +
               htons(uint16_t(l4_bytes)) + htons(uint16_t(proto));
  s += csum_partial(l4, summed);
  while (s >> 32)
    s = (s & 0xffffffff) + (s >> 32);
  return csum_finish(uint32_t(s));
}

// Writes the frame into `out` (room for header_bytes + payload_len) and
// returns its length (no FCS).
inline uint32_t write_frame(uint8_t* out, const frame_spec& f) {
  std::memcpy(out, f.dst_mac, 6);
  std::memcpy(out + 6, f.src_mac, 6);
  out[12] = 0x08;
  out[13] = 0x00;
  uint8_t* ip = out + eth_len;
  const uint32_t l4h = f.proto == proto_tcp ? tcp_len : udp_len;
  const uint32_t l4_bytes = l4h + f.payload_len;
  const uint16_t total = uint16_t(ip_len + l4_bytes);
  ip[0] = 0x45;
  ip[1] = 0;
  uint16_t v = htons(total);
  std::memcpy(ip + 2, &v, 2);
  ip[4] = ip[5] = 0;
  ip[6] = 0x40; // DF
  ip[7] = 0;
  ip[8] = sent_ttl;
  ip[9] = f.proto;
  ip[10] = ip[11] = 0;
  std::memcpy(ip + 12, &f.src_be, 4);
  std::memcpy(ip + 16, &f.dst_be, 4);
  uint16_t c = ipv4_header_csum(ip, ip_len);
  std::memcpy(ip + 10, &c, 2);

  uint8_t* l4 = ip + ip_len;
  uint16_t sp = htons(f.sport), dp = htons(f.dport);
  std::memcpy(l4, &sp, 2);
  std::memcpy(l4 + 2, &dp, 2);
  if (f.proto == proto_tcp) {
    uint32_t s = htonl(f.seq), a = htonl(f.ack);
    std::memcpy(l4 + 4, &s, 4);
    std::memcpy(l4 + 8, &a, 4);
    l4[12] = 5 << 4;
    l4[13] = f.tcp_flags;
    l4[14] = 0xff; // window 65535
    l4[15] = 0xff;
    l4[16] = l4[17] = l4[18] = l4[19] = 0;
  } else {
    uint16_t ul = htons(uint16_t(l4_bytes));
    std::memcpy(l4 + 4, &ul, 2);
    l4[6] = l4[7] = 0;
  }
  uint8_t* pay = l4 + l4h;
  if (f.head_len)
    std::memcpy(pay, f.head, f.head_len);
  if (f.payload_len > f.head_len)
    std::memset(pay + f.head_len, 0, f.payload_len - f.head_len);
  // Zero padding adds nothing to the sum: only headers and head are summed.
  uint16_t l4c = l4_checksum_v4(f.src_be, f.dst_be, f.proto, l4, l4_bytes, l4h + f.head_len);
  if (f.proto == proto_udp && l4c == 0)
    l4c = 0xffff;
  std::memcpy(l4 + (f.proto == proto_tcp ? 16 : 6), &l4c, 2);
  return eth_len + total;
}

} // namespace sluice::pktgen
