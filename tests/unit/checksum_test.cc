// The incremental checksum updates (RFC 1624) must agree with a full
// recomputation by an independent, deliberately naive RFC 1071 routine for
// every kind of rewrite the dataplane does.
#include <catch2/catch_test_macros.hpp>
#include <cstring>
#include <random>
#include <vector>

#include "checksum.h"

using namespace sluice;

namespace {

// Naive reference: big-endian 16-bit words, end-around carry, complement.
uint16_t reference(const std::vector<uint8_t>& d) {
  uint32_t sum = 0;
  for (size_t i = 0; i < d.size(); i += 2) {
    uint32_t w = uint32_t(d[i]) << 8;
    if (i + 1 < d.size())
      w |= d[i + 1];
    sum += w;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return uint16_t(~sum);
}

// Our routines work on raw (network-order) 16-bit words; convert for comparison.
uint16_t as_be(uint16_t raw) {
  uint8_t b[2];
  std::memcpy(b, &raw, 2);
  return uint16_t(b[0] << 8 | b[1]);
}

std::vector<uint8_t> random_bytes(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v)
    b = uint8_t(rng());
  return v;
}

} // namespace

TEST_CASE("full checksum matches the reference for every length and alignment") {
  std::mt19937 rng(1);
  for (size_t n = 0; n < 200; ++n) {
    auto d = random_bytes(rng, n + 3);
    for (size_t off = 0; off < 3; ++off) {
      std::vector<uint8_t> sub(d.begin() + long(off), d.begin() + long(off + n));
      CHECK(as_be(csum_finish(csum_partial(d.data() + off, uint32_t(n)))) == reference(sub));
    }
  }
}

TEST_CASE("incremental 16-, 32- and 128-bit updates equal a recomputation") {
  std::mt19937 rng(2);
  for (int iter = 0; iter < 5000; ++iter) {
    auto d = random_bytes(rng, 64);
    // Field at an even offset, checksum stored at bytes 0..1 (covered by the sum).
    d[0] = d[1] = 0;
    uint16_t c = csum_finish(csum_partial(d.data(), 64));
    std::memcpy(d.data(), &c, 2);
    size_t off = 2 + 2 * (rng() % 20);
    int kind = iter % 3;
    size_t len = kind == 0 ? 2 : kind == 1 ? 4 : 16;
    if (off + len > 64)
      off = 64 - len;
    std::vector<uint8_t> before(d.begin() + long(off), d.begin() + long(off + len));
    auto after = random_bytes(rng, len);
    std::memcpy(d.data() + off, after.data(), len);
    uint16_t cs;
    std::memcpy(&cs, d.data(), 2);
    if (kind == 0) {
      uint16_t f, t;
      std::memcpy(&f, before.data(), 2);
      std::memcpy(&t, after.data(), 2);
      csum_replace2(&cs, f, t);
    } else if (kind == 1) {
      uint32_t f, t;
      std::memcpy(&f, before.data(), 4);
      std::memcpy(&t, after.data(), 4);
      csum_replace4(&cs, f, t);
    } else {
      csum_replace16(&cs, before.data(), after.data());
    }
    std::memcpy(d.data(), &cs, 2);
    // A packet with a correct checksum sums (with its checksum) to 0xffff,
    // i.e. the reference over the whole buffer is 0 (or 0xffff for -0).
    uint16_t verify = reference(d);
    INFO("iteration " << iter << " kind " << kind);
    CHECK((verify == 0 || verify == 0xffff));
  }
}

TEST_CASE("IPv4 header checksum of a known header") {
  // RFC 1071-style example header: 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7
  std::vector<uint8_t> h = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                            0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  CHECK(as_be(ipv4_header_csum(h.data(), 20)) == 0xb861);
}

TEST_CASE("UDP zero checksum is never produced") {
  uint16_t c = 0;
  udp_csum_fixup_zero(&c);
  CHECK(c == 0xffff);
  c = 0x1234;
  udp_csum_fixup_zero(&c);
  CHECK(c == 0x1234);
}
