// Hashes that must agree between the table builder (control plane), the packet
// path and, later, the BPF programs: the VIP index hash and the Maglev flow hash.
// Both are plain integer mixing (no CRC instruction) so they give the same
// result on every machine and in a BPF program. They are not cryptographic;
// Maglev's consistency across balancer instances only needs determinism.
#pragma once

#include <cstdint>
#include <cstring>

namespace sluice {

// 64-bit finaliser from MurmurHash3 / SplitMix64: full avalanche.
inline constexpr uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// Hash of `len` bytes (len a multiple of 4), folded 8 bytes at a time.
inline uint64_t hash_bytes(const uint8_t* p, uint32_t len, uint64_t seed) {
  uint64_t h = seed ^ (uint64_t(len) * 0x9e3779b97f4a7c15ull);
  uint32_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
  }
  if (i < len) {
    uint32_t w;
    std::memcpy(&w, p + i, 4);
    h = mix64(h ^ w);
  }
  return mix64(h);
}

inline uint32_t vip_index_hash(const uint8_t vip[16], uint16_t port, uint8_t proto) {
  uint64_t a, b;
  std::memcpy(&a, vip, 8);
  std::memcpy(&b, vip + 8, 8);
  uint64_t h = mix64(a ^ mix64(b ^ (uint64_t(port) << 8 | proto)));
  return uint32_t(h ^ (h >> 32));
}

} // namespace sluice
