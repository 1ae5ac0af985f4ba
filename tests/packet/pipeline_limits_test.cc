// New-flow limits through the real worker pipeline: per-client rates (a /32
// and a /24), the worker's global new-flow budget, and per-backend connection
// caps with upper/lower thresholds. Each limit is counted when it acts, and
// established flows are never limited.
#include <arpa/inet.h>
#include <catch2/catch_test_macros.hpp>

#include "pipeline_harness.h"

using namespace sluice;
using namespace sluice::test;
using abi::fwd_mode;

namespace {

constexpr uint8_t SYN = 0x02, ACK = 0x10, RST = 0x04;

bytes syn_from(const char* client, uint16_t sport) {
  return eth(own_mac, client_mac, 0x0800,
             ip4(test::ip(client), test::ip("192.0.2.10"), 6, tcp(sport, 80, SYN)));
}
bytes pkt_from(const char* client, uint16_t sport, uint8_t flags) {
  return eth(own_mac, client_mac, 0x0800,
             ip4(test::ip(client), test::ip("192.0.2.10"), 6, tcp(sport, 80, flags, {}, 1001, 1)));
}

uint32_t forwarded(harness& h, const std::vector<bytes>& frames, double at = 0) {
  uint32_t n = 0;
  for (const bytes& f : frames)
    n += uint32_t(h.run({f}, dp::client_side, at).tx.size());
  return n;
}

const abi::service_counters& svc_stats(harness& h, uint32_t svc) {
  return h.shm().service_stats(0)[svc];
}

} // namespace

TEST_CASE("client rate per /32: burst, refusal counted, refill, others unaffected", "[limits]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_l2, {{"203.0.113.11", 1}});
  s.defence.client_rate = 2;
  s.defence.client_burst = 5;
  harness h({s});
  std::vector<bytes> a, b;
  for (uint16_t i = 0; i < 8; ++i) {
    a.push_back(syn_from("198.51.100.1", uint16_t(1000 + i)));
    b.push_back(syn_from("198.51.100.2", uint16_t(1000 + i)));
  }
  CHECK(forwarded(h, a) == 5);
  CHECK(h.drop_count(drop_reason::client_rate_limited) == 3);
  CHECK(svc_stats(h, 0).limited == 3);
  CHECK(forwarded(h, b) == 5); // another /32: its own bucket
  // Established flows of the limited client keep flowing.
  CHECK(forwarded(h, {pkt_from("198.51.100.1", 1000, ACK)}) == 1);
  // One second later: two more new flows (rate 2/s).
  std::vector<bytes> later;
  for (uint16_t i = 0; i < 4; ++i)
    later.push_back(syn_from("198.51.100.1", uint16_t(2000 + i)));
  CHECK(forwarded(h, later, 1.0) == 2);
}

TEST_CASE("client rate per /24 shares one bucket across the prefix", "[limits]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  s.defence.client_rate = 1;
  s.defence.client_burst = 4;
  s.defence.client_prefix4 = 24;
  harness h({s});
  std::vector<bytes> f;
  for (int i = 0; i < 8; ++i) {
    std::string c = "198.51.100." + std::to_string(10 + i);
    f.push_back(syn_from(c.c_str(), 5000));
  }
  CHECK(forwarded(h, f) == 4);
  CHECK(h.drop_count(drop_reason::client_rate_limited) == 4);
  CHECK(forwarded(h, {syn_from("198.51.101.1", 5000)}) == 1); // another /24
  // A refused SYN left no state and took no NAT port.
  CHECK(h.counter(worker_counter::flows_active) == 5);
}

TEST_CASE("the worker's global new-flow budget", "[limits]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_l2, {{"203.0.113.11", 1}});
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.new_flow_budget = 100;
  cfg.new_flow_budget_burst = 10;
  harness h({s}, cfg);
  std::vector<bytes> f;
  for (uint16_t i = 0; i < 30; ++i)
    f.push_back(syn_from("198.51.100.1", uint16_t(1000 + i)));
  CHECK(forwarded(h, f) == 10);
  CHECK(h.drop_count(drop_reason::new_flow_budget) == 20);
  CHECK(svc_stats(h, 0).limited == 20);
  f.clear();
  for (uint16_t i = 0; i < 30; ++i)
    f.push_back(syn_from("198.51.100.1", uint16_t(3000 + i)));
  CHECK(forwarded(h, f, 0.05) == 5); // 100/s for 50 ms
}

TEST_CASE("backend connection cap: closed at max_conns, open again below min_conns", "[limits]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  s.backends[0].max_conns = 4;
  s.backends[0].min_conns = 2;
  s.timeouts.syn_s = 3600; // the half-open flows stay; closed ones go after 1 s
  s.timeouts.fin_s = 1;
  s.timeouts.closed_s = 1;
  harness h({s});
  const int32_t slot = h.backend_slot(test::ip("203.0.113.11"));
  for (uint16_t i = 0; i < 4; ++i)
    REQUIRE(forwarded(h, {syn_from("198.51.100.1", uint16_t(1000 + i))}) == 1);
  CHECK(forwarded(h, {syn_from("198.51.100.1", 1100)}) == 0);
  CHECK(h.drop_count(drop_reason::backend_conn_limit) == 1);
  CHECK(h.backend_stats(slot).conn_limited >= 1);
  // One connection ends (RST from the client: closed, released at expiry);
  // three active is still above the lower threshold.
  REQUIRE(forwarded(h, {pkt_from("198.51.100.1", 1000, RST)}) == 1);
  h.tick(3); // the closed flow is gone, 3 remain
  CHECK(h.backend_stats(slot).active_flows == 3);
  CHECK(forwarded(h, {syn_from("198.51.100.1", 1101)}, 3) == 0);
  REQUIRE(forwarded(h, {pkt_from("198.51.100.1", 1001, RST)}, 3) == 1);
  REQUIRE(forwarded(h, {pkt_from("198.51.100.1", 1002, RST)}, 3) == 1);
  h.tick(6);
  CHECK(h.backend_stats(slot).active_flows == 1);
  CHECK(forwarded(h, {syn_from("198.51.100.1", 1102)}, 6) == 1); // below 2: open again
}

TEST_CASE("a capped backend's share goes to the others", "[limits]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_l2,
                                  {{"203.0.113.11", 1}, {"203.0.113.12", 1}});
  s.backends[0].max_conns = 3;
  harness h({s});
  std::vector<bytes> f;
  for (uint16_t i = 0; i < 40; ++i)
    f.push_back(syn_from("198.51.100.1", uint16_t(1000 + i)));
  uint32_t n = forwarded(h, f);
  const int32_t capped = h.backend_slot(test::ip("203.0.113.11"));
  const int32_t other = h.backend_slot(test::ip("203.0.113.12"));
  CHECK(h.backend_stats(capped).active_flows == 3);
  CHECK(h.backend_stats(other).active_flows == n - 3);
  // Retries with a perturbed hash find the open backend almost always.
  CHECK(n >= 38);
  CHECK(h.drop_count(drop_reason::backend_conn_limit) == 40 - n);
}
