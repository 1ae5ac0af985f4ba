// Every scheduler through the real worker pipeline: distribution of new flows
// over weighted backends, draining, and the behaviours each scheduler promises
// (least connections, source affinity, least response time).
#include <arpa/inet.h>
#include <catch2/catch_test_macros.hpp>
#include <map>

#include "pipeline_harness.h"
#include "scheduler_names.h"
#include "shm_atomic.h"

using namespace sluice;
using namespace sluice::test;
using abi::fwd_mode;
using abi::scheduler_kind;

namespace {

const ip_addr VIP4 = ip("192.0.2.10");
constexpr uint8_t SYN = 0x02, SYNACK = 0x12, ACK = 0x10;

ip_addr client(uint32_t i) {
  return ip_addr::from_v4_be(htonl(0x0b000000u + i));
} // 11.x.y.z

bytes syn(uint32_t c, uint16_t port) {
  return eth(own_mac, client_mac, 0x0800, ip4(client(c), VIP4, 6, tcp(port, 80, SYN)));
}

service_config weighted(scheduler_kind k, fwd_mode mode = fwd_mode::dsr_ipip) {
  service_config s = make_service("192.0.2.10", 80, 6, mode,
                                  {{"203.0.113.11", 1},
                                   {"203.0.113.12", 1},
                                   {"203.0.113.13", 2},
                                   {"203.0.113.14", 4},
                                   {"203.0.113.15", 0}}); // draining: never chosen
  s.scheduler = k;
  return s;
}

dp::pipeline_config big_tables() {
  dp::pipeline_config c = default_pipeline_config();
  c.flow_capacity = 1u << 17;
  c.flow_capacity6 = 64;
  return c;
}

// Sends `flows` SYNs (distinct clients and ports) and counts them per backend
// (last byte of the backend's address, from its MAC).
std::map<uint8_t, uint32_t> distribute(harness& h, uint32_t flows, uint32_t first_client = 1) {
  std::map<uint8_t, uint32_t> count;
  std::vector<bytes> burst;
  for (uint32_t i = 0; i < flows; ++i) {
    burst.push_back(syn(first_client + i, uint16_t(1024 + i % 50000)));
    if (burst.size() == 32 || i + 1 == flows) {
      run_result r = h.run(burst);
      REQUIRE(r.tx.size() == burst.size());
      for (auto& o : r.tx)
        ++count[o.data[5]];
      burst.clear();
    }
  }
  return count;
}

void check_shares(const std::map<uint8_t, uint32_t>& count, uint32_t flows,
                  const std::map<uint8_t, double>& want) {
  for (auto& [b, share] : want) {
    double got = count.count(b) ? double(count.at(b)) / flows : 0.0;
    INFO("backend ." << int(b) << " share " << got << " expected " << share);
    CHECK(got > share - 0.02);
    CHECK(got < share + 0.02);
  }
  CHECK(count.count(15) == 0);
}

} // namespace

TEST_CASE("each scheduler spreads 100,000 new flows as its weights say", "[scheduler]") {
  const std::map<uint8_t, double> by_weight = {{11, 0.125}, {12, 0.125}, {13, 0.25}, {14, 0.5}};
  const std::map<uint8_t, double> even = {{11, 0.25}, {12, 0.25}, {13, 0.25}, {14, 0.25}};
  struct row {
    scheduler_kind kind;
    bool hash_src;
    const std::map<uint8_t, double>* want;
  };
  const row rows[] = {
      {scheduler_kind::maglev, false, &by_weight},
      {scheduler_kind::maglev, true, &by_weight},
      {scheduler_kind::rr, false, &even},
      {scheduler_kind::wrr, false, &by_weight},
      {scheduler_kind::lc, false, &even},
      {scheduler_kind::wlc, false, &by_weight},
      {scheduler_kind::sh, false, &by_weight},
      {scheduler_kind::random, false, &by_weight},
      {scheduler_kind::two_choices, false, &by_weight},
      {scheduler_kind::least_bandwidth, false, &by_weight},
      {scheduler_kind::least_response_time, false, &by_weight},
  };
  constexpr uint32_t flows = 100000;
  for (const row& r : rows) {
    INFO("scheduler " << scheduler_name(r.kind) << (r.hash_src ? " (hash src)" : ""));
    service_config s = weighted(r.kind);
    s.hash_src = r.hash_src;
    harness h({s}, big_tables());
    check_shares(distribute(h, flows), flows, *r.want);
  }
}

TEST_CASE("smooth wrr interleaves instead of sending bursts to the heaviest", "[scheduler]") {
  harness h({weighted(scheduler_kind::wrr)}, big_tables());
  // Weights 1:1:2:4 over 8 picks: the weight-4 backend never gets 3 in a row.
  std::vector<uint8_t> seq;
  for (uint32_t i = 0; i < 64; ++i)
    seq.push_back(h.run({syn(i + 1, 2000)}).tx.at(0).data[5]);
  int run = 1, longest = 1;
  for (size_t i = 1; i < seq.size(); ++i) {
    run = seq[i] == seq[i - 1] ? run + 1 : 1;
    longest = std::max(longest, run);
  }
  CHECK(longest <= 2);
}

TEST_CASE("lc sends new flows away from a backend holding long flows", "[scheduler]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_ipip, {{"203.0.113.11", 1}});
  s.scheduler = scheduler_kind::lc;
  harness h({s}, big_tables());
  distribute(h, 50, 1); // 50 long-lived flows on .11
  s.backends.push_back({ip("203.0.113.12"), 0, 1, abi::backend_state::up, 0});
  h.publish({s});
  auto count = distribute(h, 100, 1000);
  CHECK(count[12] >= 70); // the first 50 all go to .12, then they alternate
  CHECK(count[11] <= 30);
}

TEST_CASE("sh keeps a client on one backend across flows and backend additions", "[scheduler]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_ipip,
                                  {{"203.0.113.11", 1}, {"203.0.113.12", 1}, {"203.0.113.13", 1}});
  s.scheduler = scheduler_kind::sh;
  harness h({s}, big_tables());
  std::map<uint32_t, uint8_t> home;
  for (uint32_t c = 1; c <= 200; ++c)
    for (uint16_t f = 0; f < 10; ++f) {
      uint8_t b = h.run({syn(c, uint16_t(3000 + f))}).tx.at(0).data[5];
      if (f == 0)
        home[c] = b;
      CHECK(b == home[c]);
    }
  s.backends.push_back({ip("203.0.113.14"), 0, 1, abi::backend_state::up, 0});
  h.publish({s});
  for (uint32_t c = 1; c <= 200; ++c)
    CHECK(h.run({syn(c, 4000)}).tx.at(0).data[5] == home[c]);
  // New clients also use the new backend.
  auto fresh = distribute(h, 400, 5000);
  CHECK(fresh[14] > 40);
}

TEST_CASE("sh by /24: clients of one subnet share a backend", "[scheduler]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_ipip,
                                  {{"203.0.113.11", 1}, {"203.0.113.12", 1}, {"203.0.113.13", 1}});
  s.scheduler = scheduler_kind::sh;
  s.sh_prefix4 = 24;
  harness h({s}, big_tables());
  for (uint32_t net = 0; net < 30; ++net) {
    uint8_t first = h.run({syn(net * 256 + 1, 5000)}).tx.at(0).data[5];
    for (uint32_t host = 2; host < 12; ++host)
      CHECK(h.run({syn(net * 256 + host, 5000)}).tx.at(0).data[5] == first);
  }
}

TEST_CASE("least-response-time prefers the backend whose SYN-ACKs come back faster",
          "[scheduler]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat,
                                  {{"203.0.113.11", 1}, {"203.0.113.12", 1}}, 8080);
  s.scheduler = scheduler_kind::least_response_time;
  harness h({s}, big_tables());
  // Handshakes: .11 answers after 1 ms, .12 after 20 ms (synthetic clock).
  double t = 0;
  std::map<uint8_t, uint32_t> count;
  for (uint32_t c = 1; c <= 300; ++c) {
    t += 0.05;
    run_result r = h.run({syn(c, 6000)}, dp::client_side, t);
    REQUIRE(r.tx.size() == 1);
    const bytes& out = r.tx[0].data;
    uint8_t b = out[5];
    ++count[b];
    uint16_t nat_port = get16(out, 34);
    ip_addr be = b == 11 ? ip("203.0.113.11") : ip("203.0.113.12");
    bytes synack = eth(own_mac, backend_mac_for(be), 0x0800,
                       ip4(be, ip("192.0.2.200"), 6, tcp(8080, nat_port, SYNACK, {}, 1, 1001)));
    REQUIRE(h.run({synack}, dp::backend_side, t + (b == 11 ? 0.001 : 0.020)).tx.size() == 1);
  }
  INFO("fast " << count[11] << " slow " << count[12]);
  CHECK(count[11] > 3 * count[12]);
  CHECK(count[12] > 0); // the guard: the slow backend still gets some flows
}

TEST_CASE("changing a live service's scheduler keeps its established flows", "[scheduler]") {
  service_config s = weighted(scheduler_kind::maglev);
  harness h({s}, big_tables());
  std::map<uint32_t, uint8_t> home;
  for (uint32_t c = 1; c <= 200; ++c)
    home[c] = h.run({syn(c, 7000)}).tx.at(0).data[5];
  s.scheduler = scheduler_kind::rr;
  h.publish({s});
  for (uint32_t c = 1; c <= 200; ++c) {
    bytes data =
        eth(own_mac, client_mac, 0x0800, ip4(client(c), VIP4, 6, tcp(7000, 80, ACK, bytes(20))));
    CHECK(h.run({data}).tx.at(0).data[5] == home[c]);
  }
}

// Soft state (abi::backend_soft): the control plane writes response-time
// hints and slow-start weights in place; workers follow on their next new flow
// with no publication, and a word written for an older incarnation is ignored.
void write_soft(harness& h, const ip_addr& addr, uint32_t rtt_us, uint32_t weight,
                uint32_t incarnation_delta = 0) {
  int32_t slot = h.backend_slot(addr);
  REQUIRE(slot >= 0);
  table_view v = h.shm().view(unsigned(load_acquire(h.shm().header()->generation) & 1));
  uint64_t inc = uint64_t(v.backends[slot].incarnation + incarnation_delta) << 32;
  store_relaxed(h.shm().backend_soft()[slot].rtt, inc | rtt_us);
  store_relaxed(h.shm().backend_soft()[slot].weight, inc | weight);
}

TEST_CASE("soft state: response-time hints move least-response-time without a publication",
          "[scheduler]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_ipip,
                                  {{"203.0.113.11", 1}, {"203.0.113.12", 1}});
  s.scheduler = scheduler_kind::least_response_time;
  harness h({s}, big_tables());
  const uint64_t gen = load_acquire(h.shm().header()->generation);
  write_soft(h, ip("203.0.113.11"), 100, 1);
  write_soft(h, ip("203.0.113.12"), 10000, 1);
  auto a = distribute(h, 2000, 1);
  INFO("fast .11 " << a[11] << " slow .12 " << a[12]);
  CHECK(a[11] > 20 * a[12]);
  // The hints swap: new flows follow (the active-flow guard makes .12 take
  // about 100 flows per flow of .11 until their scores meet).
  write_soft(h, ip("203.0.113.11"), 10000, 1);
  write_soft(h, ip("203.0.113.12"), 100, 1);
  auto b = distribute(h, 2000, 10000);
  INFO("after the swap: .11 " << b[11] << " .12 " << b[12]);
  CHECK(b[12] > 20 * b[11]);
  CHECK(load_acquire(h.shm().header()->generation) == gen);
  // Words written for another incarnation (a backend that left the slot) are
  // ignored: back to the table's hints (none), an even split.
  write_soft(h, ip("203.0.113.11"), 100, 1, 1);
  write_soft(h, ip("203.0.113.12"), 10000, 1, 1);
  auto c = distribute(h, 400, 20000);
  INFO("stale words: .11 " << c[11] << " .12 " << c[12]);
  CHECK(c[11] > 50);
  CHECK(c[12] > 50);
}

TEST_CASE("soft state: a slow-start weight moves wrr without a publication", "[scheduler]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_l2,
                                  {{"203.0.113.11", 10}, {"203.0.113.12", 10}});
  s.scheduler = scheduler_kind::wrr;
  harness h({s}, big_tables());
  const uint64_t gen = load_acquire(h.shm().header()->generation);
  write_soft(h, ip("203.0.113.11"), 0, 1); // slow start: 10 % of 10
  auto a = distribute(h, 1100);
  INFO(".11 " << a[11] << " .12 " << a[12]);
  CHECK(a[11] == 100);
  CHECK(a[12] == 1000);
  write_soft(h, ip("203.0.113.11"), 0, 10); // ramp done
  auto b = distribute(h, 1000, 5000);
  CHECK(b[11] == 500);
  CHECK(load_acquire(h.shm().header()->generation) == gen);
}
