// Internet checksum (RFC 1071) and its incremental update (RFC 1624). The packet
// path rewrites addresses and ports in place and patches the checksums with
// csum_replace*, which costs a few adds instead of a pass over the payload.
// All values are in network byte order as they sit in the packet; the one's
// complement sum is byte-order independent as long as every operand is.
#pragma once

#include <cstdint>
#include <cstring>

namespace sluice {

// Sum of 16-bit words of `len` bytes (odd tail padded with zero), not folded.
inline uint32_t csum_partial(const void* data, uint32_t len, uint32_t sum = 0) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t s = sum;
  while (len >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    s += (w & 0xffffffffull) + (w >> 32);
    p += 8;
    len -= 8;
  }
  while (len >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    s += w;
    p += 2;
    len -= 2;
  }
  if (len) {
    uint16_t w = 0;
    std::memcpy(&w, p, 1);
    s += w;
  }
  while (s >> 32)
    s = (s & 0xffffffffull) + (s >> 32);
  return uint32_t(s);
}

inline uint16_t csum_fold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(sum);
}

// The value to store in a checksum field: complement of the folded sum.
inline uint16_t csum_finish(uint32_t sum) {
  return uint16_t(~csum_fold(sum));
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for a 16-bit field changing from
// `from` to `to`.
inline void csum_replace2(uint16_t* csum, uint16_t from, uint16_t to) {
  uint32_t s = uint16_t(~*csum);
  s += uint16_t(~from);
  s += to;
  *csum = uint16_t(~csum_fold(s));
}

inline void csum_replace4(uint16_t* csum, uint32_t from, uint32_t to) {
  uint32_t s = uint16_t(~*csum);
  s += uint16_t(~from) + uint16_t(~(from >> 16));
  s += (to & 0xffff) + (to >> 16);
  *csum = uint16_t(~csum_fold(s));
}

// 16-byte (IPv6 address) replacement.
inline void csum_replace16(uint16_t* csum, const uint8_t* from, const uint8_t* to) {
  uint32_t s = uint16_t(~*csum);
  for (int i = 0; i < 16; i += 2) {
    uint16_t f, t;
    std::memcpy(&f, from + i, 2);
    std::memcpy(&t, to + i, 2);
    s += uint16_t(~f);
    s += t;
  }
  *csum = uint16_t(~csum_fold(s));
}

// UDP over IPv4 uses 0 for "no checksum": leave it alone, and never produce 0
// (RFC 768: a computed 0 is sent as 0xffff).
inline void udp_csum_fixup_zero(uint16_t* csum) {
  if (*csum == 0)
    *csum = 0xffff;
}

// IPv4 header checksum of a 20-byte-or-longer header whose checksum field is
// part of `hdr` (set it to 0 first, or pass the sum without it).
inline uint16_t ipv4_header_csum(const void* hdr, uint32_t ihl_bytes) {
  return csum_finish(csum_partial(hdr, ihl_bytes));
}

} // namespace sluice
