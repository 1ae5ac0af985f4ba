// flow_limits: token buckets, per-client prefixes, worker shares, global
// budget, backend upper/lower thresholds.
#include <catch2/catch_test_macros.hpp>

#include "flow_limits.h"
#include "ip_addr.h"

using namespace sluice;
using namespace sluice::dp;

namespace {

ip_addr addr(const char* s) {
  return *parse_ip(s);
}

uint32_t admitted(flow_limits& fl, const char* client, uint8_t prefix, uint32_t rate,
                  uint32_t burst, uint32_t now_ms, int tries, uint16_t svc = 0) {
  ip_addr a = addr(client);
  uint32_t n = 0;
  for (int i = 0; i < tries; ++i)
    n += fl.admit_client(svc, a.bytes.data(), a.is_v4(), prefix, rate, burst, now_ms);
  return n;
}

} // namespace

TEST_CASE("token bucket: burst, then the rate") {
  token_bucket tb{5000, 0};
  int ok = 0;
  for (int i = 0; i < 10; ++i)
    ok += tb.take(0, 10, 5);
  CHECK(ok == 5);
  CHECK_FALSE(tb.take(50, 10, 5)); // half a token
  CHECK(tb.take(100, 10, 5));      // 10/s: one token per 100 ms
  CHECK_FALSE(tb.take(100, 10, 5));
  // Long idle refills to the burst only, and survives clock wrap arithmetic.
  tb.last_ms = 0xfffffff0u;
  ok = 0;
  for (int i = 0; i < 10; ++i)
    ok += tb.take(100000, 10, 5);
  CHECK(ok == 5);
}

TEST_CASE("per client: burst then refused, other clients unaffected, refills with time") {
  flow_limits fl;
  REQUIRE(fl.init(1, 1024, 16, 0, 0).ok());
  CHECK(admitted(fl, "198.51.100.1", 32, 10, 20, 0, 50) == 20);
  CHECK(admitted(fl, "198.51.100.2", 32, 10, 20, 0, 50) == 20);
  CHECK(admitted(fl, "198.51.100.1", 32, 10, 20, 1000, 50) == 10);
  // Rate 0: no limit.
  CHECK(admitted(fl, "198.51.100.3", 32, 0, 0, 0, 500) == 500);
}

TEST_CASE("prefixes: a /24 shares one bucket, a /32 does not; v6 /64 and /48") {
  flow_limits fl;
  REQUIRE(fl.init(1, 1024, 16, 0, 0).ok());
  CHECK(admitted(fl, "203.0.113.1", 24, 1, 10, 0, 6) == 6);
  CHECK(admitted(fl, "203.0.113.200", 24, 1, 10, 0, 6) == 4);
  CHECK(admitted(fl, "203.0.114.1", 24, 1, 10, 0, 6) == 6);
  CHECK(admitted(fl, "2001:db8:1:2::1", 64, 1, 10, 0, 6) == 6);
  CHECK(admitted(fl, "2001:db8:1:2:ffff::9", 64, 1, 10, 0, 6) == 4);
  CHECK(admitted(fl, "2001:db8:1:3::1", 64, 1, 10, 0, 6) == 6);
  CHECK(admitted(fl, "2001:db8:1:4::1", 48, 1, 10, 0, 6) == 6);
  CHECK(admitted(fl, "2001:db8:1:5::1", 48, 1, 10, 0, 6) == 4);
  // Services have their own buckets.
  CHECK(admitted(fl, "203.0.113.1", 24, 1, 10, 0, 6, 1) == 6);
}

TEST_CASE("several workers: each applies its share of rate and burst") {
  flow_limits fl;
  REQUIRE(fl.init(4, 1024, 16, 0, 0).ok());
  CHECK(admitted(fl, "198.51.100.1", 32, 100, 40, 0, 50) == 10);
  CHECK(admitted(fl, "198.51.100.1", 32, 100, 40, 1000, 50) == 10); // 25/s, burst 10
  // Shares never drop to zero.
  CHECK(admitted(fl, "198.51.100.9", 32, 1, 1, 0, 5) == 1);
}

TEST_CASE("a full table forgets the least recently used client, never blocks a new one") {
  flow_limits fl;
  REQUIRE(fl.init(1, 4, 16, 0, 0).ok()); // one bucket of 4 ways
  CHECK(fl.client_entries() == 4);
  for (int c = 0; c < 4; ++c) {
    std::string a = "10.0.0." + std::to_string(c + 1);
    CHECK(admitted(fl, a.c_str(), 32, 1, 2, uint32_t(c), 3) == 2);
  }
  // A fifth client takes the oldest way (10.0.0.1) and starts with a full bucket.
  CHECK(admitted(fl, "10.0.0.5", 32, 1, 2, 10, 3) == 2);
  CHECK(admitted(fl, "10.0.0.4", 32, 1, 2, 11, 1) == 0); // still remembered
  CHECK(admitted(fl, "10.0.0.1", 32, 1, 2, 12, 3) == 2); // forgotten: full again
}

TEST_CASE("global budget per worker") {
  flow_limits fl;
  REQUIRE(fl.init(2, 16, 16, 1000, 100).ok());
  int ok = 0;
  for (int i = 0; i < 1000; ++i)
    ok += fl.admit_budget(0);
  CHECK(ok == 100);
  ok = 0;
  for (int i = 0; i < 1000; ++i)
    ok += fl.admit_budget(50);
  CHECK(ok == 50);
  flow_limits none;
  REQUIRE(none.init(1, 16, 16, 0, 0).ok());
  for (int i = 0; i < 1000; ++i)
    REQUIRE(none.admit_budget(0));
}

TEST_CASE("backend cap: closed at the upper share until below the lower share") {
  flow_limits fl;
  REQUIRE(fl.init(2, 16, 16, 0, 0).ok());
  // upper 100, lower 60 for the balancer: 50 and 30 per worker.
  CHECK(fl.backend_open(3, 49, 100, 60));
  CHECK_FALSE(fl.backend_open(3, 50, 100, 60));
  CHECK(fl.backend_closed(3));
  CHECK_FALSE(fl.backend_open(3, 40, 100, 60));
  CHECK_FALSE(fl.backend_open(3, 30, 100, 60));
  CHECK(fl.backend_open(3, 29, 100, 60));
  CHECK_FALSE(fl.backend_closed(3));
  // lower 0: three quarters of upper (IPVS).
  CHECK_FALSE(fl.backend_open(4, 50, 100, 0));
  CHECK_FALSE(fl.backend_open(4, 38, 100, 0));
  CHECK(fl.backend_open(4, 37, 100, 0));
  // upper 0: no cap.
  CHECK(fl.backend_open(5, 1u << 30, 0, 0));
}

TEST_CASE("too many client entries is refused with a message") {
  flow_limits fl;
  auto r = fl.init(1, 1u << 30, 16, 0, 0);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error_message().find("client entries") != std::string::npos);
}
