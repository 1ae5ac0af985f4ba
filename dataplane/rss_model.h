// Software model of the NIC's receive-side scaling: the Toeplitz hash with the
// ports' key over the fields a NIC hashes (addresses, then source port << 16 |
// destination port, as DPDK's rte_softrss reads them), and the redirection
// table that maps a hash to a worker. The dataplane uses it to decide which
// worker owns a packet when the ports cannot be trusted to deliver it there,
// and to choose full-NAT source ports whose replies the NIC delivers to the
// flow's owner.
//
// Trade-offs: rte_softrss walks the input bit by bit (hundreds of cycles for an
// IPv6 tuple). Toeplitz is linear over GF(2), so the hash of an input is the
// XOR of one precomputed 32-bit value per input byte: a table of 256 entries
// per byte position (36 positions cover an IPv6 5-tuple: 36 KiB) turns the hash
// into 12 (IPv4) or 36 (IPv6) loads, and the result is bit-identical to
// rte_softrss with the same key (tests/unit/rss_model_test.cc checks that).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

namespace sluice::dp {

class rss_model {
public:
  // Bytes of the longest hashed input: two IPv6 addresses and two ports.
  static constexpr uint32_t max_input = 36;

  rss_model() = default;
  // `key` is the 40-byte Toeplitz key; `reta` maps hash % reta.size() to a
  // worker (empty: every packet belongs to worker 0).
  rss_model(const std::array<uint8_t, 40>& key, std::vector<uint16_t> reta)
      : reta_(std::move(reta)) {
    // Bit i of the input (counting from the most significant bit of byte 0)
    // contributes the 32 key bits starting at bit i.
    auto key_window = [&](uint32_t bit) {
      uint32_t w = 0;
      for (uint32_t b = 0; b < 32; ++b) {
        uint32_t k = bit + b;
        uint32_t v = k / 8 < key.size() ? (key[k / 8] >> (7 - k % 8)) & 1u : 0u;
        w = (w << 1) | v;
      }
      return w;
    };
    table_.resize(max_input * 256);
    for (uint32_t pos = 0; pos < max_input; ++pos)
      for (uint32_t byte = 0; byte < 256; ++byte) {
        uint32_t h = 0;
        for (uint32_t bit = 0; bit < 8; ++bit)
          if (byte & (0x80u >> bit))
            h ^= key_window(pos * 8 + bit);
        table_[pos * 256 + byte] = h;
      }
  }

  // Hash of `n` input bytes in network order (the layout a NIC hashes).
  uint32_t hash_bytes(const uint8_t* in, uint32_t n) const {
    uint32_t h = 0;
    for (uint32_t i = 0; i < n; ++i)
      h ^= table_[i * 256 + in[i]];
    return h;
  }

  // 5-tuple hashes; addresses and ports in network order, as in the packet.
  uint32_t hash4(uint32_t src_be, uint32_t dst_be, uint16_t sport_be, uint16_t dport_be) const {
    uint8_t in[12];
    std::memcpy(in, &src_be, 4);
    std::memcpy(in + 4, &dst_be, 4);
    std::memcpy(in + 8, &sport_be, 2);
    std::memcpy(in + 10, &dport_be, 2);
    return hash_bytes(in, sizeof(in));
  }
  uint32_t hash6(const uint8_t* src, const uint8_t* dst, uint16_t sport_be,
                 uint16_t dport_be) const {
    uint8_t in[36];
    std::memcpy(in, src, 16);
    std::memcpy(in + 16, dst, 16);
    std::memcpy(in + 32, &sport_be, 2);
    std::memcpy(in + 34, &dport_be, 2);
    return hash_bytes(in, sizeof(in));
  }
  // Address and port only (one side of a flow): 6 or 18 bytes.
  uint32_t hash_endpoint(const uint8_t* addr, uint8_t family, uint16_t port_be) const {
    uint8_t in[18];
    uint32_t alen = family == 4 ? 4 : 16;
    std::memcpy(in, addr, alen);
    std::memcpy(in + alen, &port_be, 2);
    return hash_bytes(in, alen + 2);
  }

  uint16_t worker_of(uint32_t hash) const { return reta_.empty() ? 0 : reta_[hash % reta_.size()]; }
  const std::vector<uint16_t>& reta() const { return reta_; }

private:
  std::vector<uint32_t> table_;
  std::vector<uint16_t> reta_;
};

} // namespace sluice::dp
