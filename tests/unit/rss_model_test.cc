// The table-driven Toeplitz model must be bit-identical to DPDK's rte_softrss
// (the reference the NIC's hardware hash is documented against) for every
// input length the dataplane hashes.
#include <catch2/catch_test_macros.hpp>
#include <random>

#include <rte_byteorder.h>
#include <rte_thash.h>

#include "rss_model.h"

using sluice::dp::rss_model;

namespace {

const std::array<uint8_t, 40> key = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
                                     0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
                                     0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
                                     0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

uint32_t reference(const uint8_t* in, uint32_t n) {
  uint32_t words[9] = {};
  for (uint32_t i = 0; i < n; ++i)
    words[i / 4] |= uint32_t(in[i]) << (24 - 8 * (i % 4));
  return rte_softrss(words, (n + 3) / 4, key.data());
}

} // namespace

TEST_CASE("rss_model equals rte_softrss on IPv4 and IPv6 tuples and endpoints", "[rss]") {
  rss_model m(key, {0, 1, 2, 3});
  std::mt19937 rng(7);
  for (int iter = 0; iter < 2000; ++iter) {
    uint8_t in[36];
    for (uint8_t& b : in)
      b = uint8_t(rng());
    uint32_t src4, dst4;
    uint16_t sp, dp;
    std::memcpy(&src4, in, 4);
    std::memcpy(&dst4, in + 4, 4);
    std::memcpy(&sp, in + 8, 2);
    std::memcpy(&dp, in + 10, 2);
    REQUIRE(m.hash4(src4, dst4, sp, dp) == reference(in, 12));
    std::memcpy(&sp, in + 32, 2);
    std::memcpy(&dp, in + 34, 2);
    REQUIRE(m.hash6(in, in + 16, sp, dp) == reference(in, 36));
    // Endpoint: address and port, zero padding contributes nothing.
    uint8_t ep[8] = {};
    std::memcpy(ep, in, 6);
    std::memcpy(&sp, in + 4, 2);
    REQUIRE(m.hash_endpoint(in, 4, sp) == reference(ep, 8));
  }
}

TEST_CASE("rss_model maps hashes through the redirection table", "[rss]") {
  rss_model m(key, {3, 1, 2});
  CHECK(m.worker_of(0) == 3);
  CHECK(m.worker_of(4) == 1);
  CHECK(m.worker_of(5) == 2);
  rss_model none;
  CHECK(none.worker_of(12345) == 0);
}

TEST_CASE("the symmetric key gives both directions of a 5-tuple the same hash", "[rss]") {
  std::array<uint8_t, 40> sym{};
  for (size_t i = 0; i < sym.size(); i += 2) {
    sym[i] = 0x6d;
    sym[i + 1] = 0x5a;
  }
  rss_model m(sym, {0, 1});
  uint32_t a = rte_cpu_to_be_32(0xc0000201), b = rte_cpu_to_be_32(0xcb007107);
  uint16_t pa = rte_cpu_to_be_16(40000), pb = rte_cpu_to_be_16(80);
  CHECK(m.hash4(a, b, pa, pb) == m.hash4(b, a, pb, pa));
}
