// syn_cookie.h: round trip, option bits, period rotation, forgery resistance.
#include <catch2/catch_test_macros.hpp>
#include <random>

#include "syn_cookie.h"

using namespace sluice::dp;

namespace {

syn_tuple tuple4(uint32_t client, uint16_t sport) {
  syn_tuple t{};
  t.src[10] = t.src[11] = 0xff;
  std::memcpy(t.src + 12, &client, 4);
  t.dst[10] = t.dst[11] = 0xff;
  t.dst[12] = 192;
  t.dst[15] = 10;
  t.sport_be = sport;
  t.dport_be = 0x5000;
  return t;
}

syn_cookie_secret secret(uint64_t now_ms, uint64_t a = 1, uint64_t b = 2) {
  syn_cookie_secret s;
  s.seed(a, b);
  s.refresh(now_ms);
  return s;
}

} // namespace

TEST_CASE("a cookie verifies and gives back the options it encoded") {
  auto sec = secret(1000);
  syn_tuple t = tuple4(0x0100000a, 0x3930);
  for (uint8_t ws : {uint8_t(0), uint8_t(7), uint8_t(14), syn_cookie_no_wscale})
    for (bool sack : {false, true})
      for (uint16_t mss : {uint16_t(500), uint16_t(1300), uint16_t(1460), uint16_t(9000)}) {
        syn_options o{mss, ws, sack};
        uint32_t isn = 0xfffffff0u + ws; // wraps: seq arithmetic must hold
        uint32_t c = syn_cookie_make(sec, t, isn, o);
        syn_options got;
        REQUIRE(syn_cookie_check(sec, t, isn + 1, c + 1, got));
        CHECK(got.wscale == ws);
        CHECK(got.sack == sack);
        CHECK(got.mss == syn_cookie_mss[syn_cookie_mss_index(mss)]);
        CHECK(got.mss <= std::max<uint16_t>(mss, 536));
      }
}

TEST_CASE("window scale beyond 14 is encoded as none") {
  auto sec = secret(0);
  syn_tuple t = tuple4(1, 2);
  uint32_t c = syn_cookie_make(sec, t, 5, syn_options{1460, 15, true});
  syn_options got;
  REQUIRE(syn_cookie_check(sec, t, 6, c + 1, got));
  CHECK(got.wscale == syn_cookie_no_wscale);
}

TEST_CASE("a cookie fails for another tuple, ISN, worker secret or a flipped bit") {
  auto sec = secret(5000);
  syn_tuple t = tuple4(0x0100000a, 0x3930);
  syn_options o{1460, 7, true}, got;
  uint32_t c = syn_cookie_make(sec, t, 1234, o);
  syn_tuple t2 = t;
  t2.sport_be ^= 1;
  CHECK_FALSE(syn_cookie_check(sec, t2, 1235, c + 1, got));
  t2 = t;
  t2.src[15] ^= 1;
  CHECK_FALSE(syn_cookie_check(sec, t2, 1235, c + 1, got));
  CHECK_FALSE(syn_cookie_check(sec, t, 1236, c + 1, got));
  CHECK_FALSE(syn_cookie_check(secret(5000, 9, 9), t, 1235, c + 1, got));
  for (int bit = 0; bit < 32; ++bit)
    CHECK_FALSE(syn_cookie_check(sec, t, 1235, (c ^ (1u << bit)) + 1, got));
}

TEST_CASE("IPv6 tuples use all 32 address bytes") {
  auto sec = secret(0);
  syn_tuple t{};
  t.src[0] = 0x20;
  t.src[1] = 0x01;
  t.src[15] = 1;
  t.dst[0] = 0x20;
  t.dst[15] = 2;
  t.sport_be = 7;
  t.dport_be = 8;
  uint32_t c = syn_cookie_make(sec, t, 99, syn_options{1220, 3, false});
  syn_options got;
  REQUIRE(syn_cookie_check(sec, t, 100, c + 1, got));
  CHECK(got.mss == 1220);
  syn_tuple t2 = t;
  t2.src[2] = 1; // differs only in the upper half
  CHECK_FALSE(syn_cookie_check(sec, t2, 100, c + 1, got));
}

TEST_CASE("cookies live for the issuing period and the next one") {
  syn_cookie_secret sec;
  sec.seed(42, 43);
  sec.refresh(10);
  syn_tuple t = tuple4(7, 8);
  uint32_t c = syn_cookie_make(sec, t, 1, syn_options{});
  syn_options got;
  sec.refresh(syn_cookie_period_ms - 1);
  CHECK(syn_cookie_check(sec, t, 2, c + 1, got));
  sec.refresh(syn_cookie_period_ms + 10); // next period: still valid
  CHECK(syn_cookie_check(sec, t, 2, c + 1, got));
  sec.refresh(2 * syn_cookie_period_ms + 10); // two periods later: expired
  CHECK_FALSE(syn_cookie_check(sec, t, 2, c + 1, got));
  sec.refresh(5 * syn_cookie_period_ms + 10); // same low period bits, other key
  CHECK_FALSE(syn_cookie_check(sec, t, 2, c + 1, got));
}

TEST_CASE("random ACKs almost never pass") {
  auto sec = secret(100);
  std::mt19937 rng(7);
  uint32_t passed = 0;
  syn_options got;
  for (int i = 0; i < 200000; ++i) {
    syn_tuple t = tuple4(rng(), uint16_t(rng()));
    passed += syn_cookie_check(sec, t, rng(), rng(), got);
  }
  // Expected about 200000 * 2/4 (valid period bits) * 2^-23 ≈ 0.01.
  CHECK(passed <= 2);
}
