// Flow-tracking behaviour through the real worker pipeline: stickiness,
// draining, expiry by state, eviction under pressure, stale backends and the
// per-service/per-backend counters.
#include <arpa/inet.h>
#include <catch2/catch_test_macros.hpp>
#include <map>
#include <set>

#include "pipeline_harness.h"

using namespace sluice;
using namespace sluice::test;
using abi::fwd_mode;

namespace {

const ip_addr VIP4 = ip("192.0.2.10");
constexpr uint8_t SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04;

bytes client_packet(uint32_t client, uint16_t sport, uint8_t flags, size_t len = 0) {
  ip_addr c = ip_addr::from_v4_be(htonl(0xc6336400u + client)); // 198.51.100.x
  return eth(own_mac, client_mac, 0x0800, ip4(c, VIP4, 6, tcp(sport, 80, flags, bytes(len, 7))));
}

service_config four_backends(fwd_mode mode = fwd_mode::dsr_ipip) {
  return make_service(
      "192.0.2.10", 80, 6, mode,
      {{"203.0.113.11", 1}, {"203.0.113.12", 1}, {"203.0.113.13", 1}, {"203.0.113.14", 1}});
}

// The backend a forwarded frame went to, from its destination MAC.
uint8_t backend_of(const run_result& r) {
  REQUIRE(r.tx.size() == 1);
  return r.tx[0].data[5];
}

} // namespace

TEST_CASE("SYN and then data of the same flow go to the same backend", "[flows]") {
  harness h({four_backends()});
  std::set<uint8_t> seen;
  for (uint16_t port = 1000; port < 1040; ++port) {
    uint8_t b = backend_of(h.run({client_packet(1, port, SYN)}));
    for (int i = 0; i < 5; ++i)
      CHECK(backend_of(h.run({client_packet(1, port, ACK, 100)})) == b);
    seen.insert(b);
  }
  CHECK(seen.size() == 4); // 40 flows over 4 backends use every backend
  CHECK(h.counter(worker_counter::flows_created) == 40);
  CHECK(h.counter(worker_counter::flows_active) == 40);
}

TEST_CASE("a burst holding a SYN and its data creates one flow", "[flows]") {
  harness h({four_backends()});
  run_result r = h.run({client_packet(1, 5000, SYN), client_packet(1, 5000, ACK, 10),
                        client_packet(1, 5000, ACK, 20)});
  REQUIRE(r.tx.size() == 3);
  CHECK(r.tx[0].data[5] == r.tx[1].data[5]);
  CHECK(r.tx[1].data[5] == r.tx[2].data[5]);
  CHECK(h.counter(worker_counter::flows_created) == 1);
}

TEST_CASE("a weight-0 backend keeps its flows and gets no new ones", "[flows]") {
  service_config s = four_backends();
  harness h({s});
  std::map<uint16_t, uint8_t> flow_backend;
  for (uint16_t port = 2000; port < 2100; ++port)
    flow_backend[port] = backend_of(h.run({client_packet(2, port, SYN)}));
  s.backends[1].weight = 0; // 203.0.113.12 drains
  h.publish({s});
  int kept_on_drained = 0;
  for (auto& [port, b] : flow_backend) {
    CHECK(backend_of(h.run({client_packet(2, port, ACK, 10)})) == b);
    kept_on_drained += b == 12;
  }
  CHECK(kept_on_drained > 0);
  for (uint16_t port = 3000; port < 3200; ++port)
    CHECK(backend_of(h.run({client_packet(3, port, SYN)})) != 12);
}

TEST_CASE("flows expire after their state's idle timeout", "[flows]") {
  service_config s = four_backends();
  s.timeouts.syn_s = 5;
  s.timeouts.established_s = 60;
  s.timeouts.fin_s = 2;
  harness h({s});
  h.run({client_packet(1, 100, SYN)}, dp::client_side, 0); // half-open
  h.run({client_packet(1, 101, SYN)}, dp::client_side, 0);
  h.run({client_packet(1, 101, ACK)}, dp::client_side, 0.1); // established
  h.run({client_packet(1, 102, SYN)}, dp::client_side, 0.1);
  h.run({client_packet(1, 102, ACK)}, dp::client_side, 0.1);
  h.run({client_packet(1, 102, FIN | ACK)}, dp::client_side, 0.2); // closing
  CHECK(h.counter(worker_counter::flows_active) == 3);
  h.tick(3);
  CHECK(h.counter(worker_counter::flows_active) == 2); // FIN state gone after 2 s
  h.tick(6);
  CHECK(h.counter(worker_counter::flows_active) == 1); // SYN state gone after 5 s
  h.tick(59);
  CHECK(h.counter(worker_counter::flows_active) == 1);
  h.tick(61);
  CHECK(h.counter(worker_counter::flows_active) == 0);
  CHECK(h.counter(worker_counter::flows_expired) == 3);
}

TEST_CASE("an expired flow is rescheduled lazily on its next packet", "[flows]") {
  service_config s = four_backends();
  s.timeouts.established_s = 10;
  harness h({s});
  h.run({client_packet(1, 100, SYN)}, dp::client_side, 0);
  h.run({client_packet(1, 100, ACK)}, dp::client_side, 1);
  // No sweep in between: the packet at t=20 finds the entry expired.
  h.run({client_packet(1, 100, ACK)}, dp::client_side, 20);
  CHECK(h.counter(worker_counter::flows_expired) == 1);
  CHECK(h.counter(worker_counter::flows_created) == 2);
}

TEST_CASE("a full table evicts half-open flows before established ones", "[flows]") {
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.flow_capacity = 64;
  harness h({four_backends()}, cfg);
  // Fill the table with established flows, then half-open ones.
  uint16_t port = 1;
  while (h.counter(worker_counter::flows_active) < 48) {
    h.run({client_packet(1, port, SYN)});
    h.run({client_packet(1, port, ACK)});
    ++port;
  }
  uint16_t first_syn = port;
  for (int i = 0; i < 200; ++i)
    h.run({client_packet(2, port++, SYN)}); // a SYN flood
  CHECK(h.counter(worker_counter::flows_evicted) > 0);
  // Every established flow survived; none was rescheduled.
  uint64_t created = h.counter(worker_counter::flows_created);
  for (uint16_t p = 1; p < first_syn; ++p)
    h.run({client_packet(1, p, ACK)});
  CHECK(h.counter(worker_counter::flows_created) == created);
}

TEST_CASE("a full table of established flows forwards statelessly and counts it", "[flows]") {
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.flow_capacity = 16;
  harness h({four_backends()}, cfg);
  for (uint16_t port = 1; port < 200; ++port) {
    h.run({client_packet(1, port, SYN)});
    run_result r = h.run({client_packet(1, port, ACK)});
    CHECK(r.tx.size() == 1);
  }
  CHECK(h.counter(worker_counter::untracked) > 0);
  CHECK(h.drop_count(drop_reason::flow_table_full) == 0);
}

TEST_CASE("a removed backend keeps its flows; new flows go to the others", "[flows]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_ipip, {{"203.0.113.11", 1}});
  harness h({s});
  CHECK(backend_of(h.run({client_packet(1, 100, SYN)})) == 11);
  // Replace the backend: the removed one's slot is retired, not reused, so
  // its established flow continues ("keep") while new flows go to the new one.
  s.backends[0].addr = ip("203.0.113.21");
  h.publish({s});
  CHECK(backend_of(h.run({client_packet(1, 100, ACK)})) == 11);
  CHECK(backend_of(h.run({client_packet(1, 101, SYN)})) == 21);
  CHECK(h.counter(worker_counter::flows_stale) == 0);
}

TEST_CASE("a flow whose backend slot went away with its service is stale", "[flows]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_ipip, {{"203.0.113.11", 1}});
  harness h({s});
  CHECK(backend_of(h.run({client_packet(1, 100, SYN)})) == 11);
  // The service leaves (its backends' slots are freed for good), then comes
  // back with another backend: the old flow must not reach .11 by accident.
  h.publish({});
  s.backends[0].addr = ip("203.0.113.21");
  h.publish({s});
  CHECK(backend_of(h.run({client_packet(1, 100, ACK)})) == 21);
  CHECK(h.counter(worker_counter::flows_stale) == 1);
}

TEST_CASE("reset_on_down also resets the flows of a removed backend", "[flows]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  s.reset_on_down = true;
  harness h({s});
  REQUIRE(h.run({client_packet(1, 100, SYN)}).tx.size() == 1);
  s.backends[0].addr = ip("203.0.113.21");
  h.publish({s});
  run_result r = h.run({client_packet(1, 100, ACK, 10)});
  REQUIRE(r.tx.size() == 2); // RST to the client and to the removed backend
  CHECK(h.counter(worker_counter::flows_reset) == 1);
}

TEST_CASE("per-backend counters and passive health signals", "[flows]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  s.timeouts.syn_s = 1;
  s.timeouts.fin_s = 1;
  harness h({s});
  h.run({client_packet(1, 100, SYN, 0)}, dp::client_side, 0);
  h.run({client_packet(1, 101, SYN, 0)}, dp::client_side, 0);
  int32_t slot = h.backend_slot(ip("203.0.113.11"));
  REQUIRE(slot >= 0);
  CHECK(h.backend_stats(slot).new_flows == 2);
  CHECK(h.backend_stats(slot).packets == 2);
  CHECK(h.backend_stats(slot).active_flows == 2);
  // The backend resets one connection; the other SYN is never answered.
  bytes rst = eth(own_mac, backend_mac_for(ip("203.0.113.11")), 0x0800,
                  ip4(ip("203.0.113.11"), ip("192.0.2.200"), 6, tcp(8080, 1024, 0x14)));
  run_result r = h.run({rst}, dp::backend_side, 0.1);
  CHECK(r.tx.size() == 1);
  CHECK(h.backend_stats(slot).rst_from_backend == 1);
  // The reset flow is closing: it leaves ActiveConn for InActConn until it expires.
  CHECK(h.backend_stats(slot).active_flows == 1);
  CHECK(h.backend_stats(slot).inactive_flows == 1);
  h.tick(5);
  CHECK(h.backend_stats(slot).active_flows == 0);
  CHECK(h.backend_stats(slot).inactive_flows == 0);
  CHECK(h.backend_stats(slot).syn_unanswered == 1);
}

TEST_CASE("inactive gauge: FIN moves a flow from active to inactive, a new SYN back", "[flows]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_ipip, {{"203.0.113.11", 1}});
  s.timeouts.fin_s = 1;
  harness h({s});
  int32_t slot = h.backend_slot(ip("203.0.113.11"));
  REQUIRE(slot >= 0);
  h.run({client_packet(1, 100, SYN, 0)}, dp::client_side, 0);
  CHECK(h.backend_stats(slot).active_flows == 1);
  CHECK(h.backend_stats(slot).inactive_flows == 0);
  h.run({client_packet(1, 100, uint8_t(FIN | ACK), 0)}, dp::client_side, 0.1);
  CHECK(h.backend_stats(slot).active_flows == 0);
  CHECK(h.backend_stats(slot).inactive_flows == 1);
  // Client port reuse: a SYN on the closing entry is a new flow, active again.
  h.run({client_packet(1, 100, SYN, 0)}, dp::client_side, 0.2);
  CHECK(h.backend_stats(slot).active_flows == 1);
  CHECK(h.backend_stats(slot).inactive_flows == 0);
  h.run({client_packet(1, 100, uint8_t(FIN | ACK), 0)}, dp::client_side, 0.3);
  CHECK(h.backend_stats(slot).inactive_flows == 1);
  h.tick(5);
  CHECK(h.backend_stats(slot).active_flows == 0);
  CHECK(h.backend_stats(slot).inactive_flows == 0);
}

TEST_CASE("NAT source ports are reused after their flow ends", "[flows]") {
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.nat_port_min = 2000;
  cfg.nat_port_max = 2003; // four ports
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  s.timeouts.syn_s = 1;
  cfg.nat_pool = {ip("192.0.2.200")};
  harness h({s}, cfg);
  for (uint16_t p = 0; p < 4; ++p)
    CHECK(h.run({client_packet(1, 100 + p, SYN)}).tx.size() == 1);
  CHECK(h.run({client_packet(1, 200, SYN)}).tx.empty());
  CHECK(h.drop_count(drop_reason::nat_port_exhausted) == 1);
  h.tick(3); // the four half-open flows expire and free their ports
  CHECK(h.run({client_packet(1, 300, SYN)}, dp::client_side, 3).tx.size() == 1);
}

TEST_CASE("mid-flow RSTs are rate-limited: an ACK flood is not reflected", "[flows]") {
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.mid_flow_rst_rate = 5;
  cfg.nat_pool = {ip("192.0.2.200")};
  harness h({make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080)}, cfg);
  std::vector<bytes> acks;
  for (uint16_t i = 0; i < 20; ++i)
    acks.push_back(client_packet(i, uint16_t(1000 + i), ACK, 10));
  run_result r = h.run(acks, dp::client_side, 1);
  CHECK(r.tx.size() == 5); // a second's worth
  for (const auto& o : r.tx)
    CHECK(o.side == dp::client_side);
  CHECK(h.counter(worker_counter::mid_flow_rst_sent) == 5);
  CHECK(h.counter(worker_counter::mid_flow_rst_limited) == 15);
  CHECK(h.drop_count(drop_reason::mid_flow_no_state) == 15);
  // 400 ms later: two more.
  CHECK(h.run(acks, dp::client_side, 1.4).tx.size() == 2);
  CHECK(h.counter(worker_counter::mid_flow_rst_limited) == 33);
  CHECK(h.counter(worker_counter::flows_active) == 0);
}

TEST_CASE("publications under traffic lose and misroute nothing", "[flows]") {
  // 300 established flows keep sending while the tables change under them:
  // weights, a backend added, a backend drained, the scheduler switched. Every
  // packet must leave, established flows must keep their backend, and new
  // flows must only use backends the current generation offers.
  service_config s = four_backends();
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.flow_capacity = 8192;
  harness h({s}, cfg);
  std::map<uint16_t, uint8_t> home;
  for (uint16_t port = 1; port <= 300; ++port)
    home[port] = backend_of(h.run({client_packet(7, port, SYN)}));
  uint16_t next_port = 1000;
  for (int gen = 0; gen < 12; ++gen) {
    switch (gen % 4) {
    case 0:
      s.backends[0].weight = uint16_t(1 + gen);
      break;
    case 1:
      s.backends.push_back({ip_addr::from_v4_be(htonl(0xcb007100u + 20 + uint32_t(gen))), 0, 1,
                            abi::backend_state::up, 0});
      break;
    case 2:
      s.backends[2].weight = s.backends[2].weight ? 0 : 2;
      break;
    case 3:
      s.scheduler = s.scheduler == abi::scheduler_kind::maglev ? abi::scheduler_kind::wrr
                                                               : abi::scheduler_kind::maglev;
      break;
    }
    h.publish({s});
    std::set<uint8_t> offered;
    for (const auto& b : s.backends)
      if (b.weight > 0)
        offered.insert(b.addr.bytes[15]);
    std::vector<bytes> burst;
    std::vector<int> expect; // backend last byte, or -1 for a new flow
    for (uint16_t port = 1; port <= 300; ++port) {
      burst.push_back(client_packet(7, port, ACK, 20));
      expect.push_back(home[port]);
      if (port % 10 == 0) {
        burst.push_back(client_packet(8, next_port++, SYN));
        expect.push_back(-1);
      }
      if (burst.size() >= 32 || port == 300) {
        run_result r = h.run(burst);
        REQUIRE(r.dropped == 0);
        REQUIRE(r.tx.size() == burst.size());
        for (size_t i = 0; i < burst.size(); ++i) {
          uint8_t b = r.tx[i].data[5];
          if (expect[i] >= 0)
            CHECK(b == uint8_t(expect[i]));
          else
            CHECK(offered.count(b) == 1);
        }
        burst.clear();
        expect.clear();
      }
    }
  }
  CHECK(h.counter(worker_counter::dropped) == 0);
}

TEST_CASE("reset_on_down: flows of a backend that goes down get RSTs both ways", "[flows]") {
  const ip_addr C = ip("198.51.100.7"), B = ip("203.0.113.11"), POOL = ip("192.0.2.200");
  auto no_window = [](bytes t) {
    put16(t, 14, 0);
    return t;
  };
  for (bool reset : {false, true}) {
    INFO("reset_on_down " << reset);
    service_config s =
        make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
    s.reset_on_down = reset;
    harness h({s});
    bytes syn = eth(own_mac, client_mac, 0x0800, ip4(C, VIP4, 6, tcp(40000, 80, SYN, {}, 1000)));
    REQUIRE(h.run({syn}).tx.size() == 1);
    s.backends[0].state = abi::backend_state::down;
    h.publish({s});
    bytes data = eth(own_mac, client_mac, 0x0800,
                     ip4(C, VIP4, 6, tcp(40000, 80, ACK, bytes(10, 9), 1001, 5001)));
    run_result r = h.run({data});
    if (!reset) {
      // keep: the flow goes on to its (down) backend until it ends.
      REQUIRE(r.tx.size() == 1);
      CHECK(r.tx[0].side == dp::backend_side);
      CHECK(h.counter(worker_counter::flows_reset) == 0);
      continue;
    }
    REQUIRE(r.tx.size() == 2);
    bytes to_client = eth(client_mac, own_mac, 0x0800,
                          ip4(VIP4, C, 6, no_window(tcp(80, 40000, RST, {}, 5001, 0))));
    bytes to_backend = eth(backend_mac_for(B), own_mac, 0x0800,
                           ip4(POOL, B, 6, no_window(tcp(1024, 8080, RST, {}, 1001, 0))));
    for (const auto& o : r.tx) {
      if (o.side == dp::client_side) {
        INFO("got " << hex(o.data) << "\nwant " << hex(to_client));
        CHECK(o.data == to_client);
      } else {
        INFO("got " << hex(o.data) << "\nwant " << hex(to_backend));
        CHECK(o.data == to_backend);
      }
    }
    CHECK(h.counter(worker_counter::flows_reset) == 1);
    CHECK(h.counter(worker_counter::flows_active) == 0);
    // The flow is gone: its next packet starts nothing in full NAT (and gets
    // an RST: defence.mid_flow_rst is on by default).
    run_result again = h.run({data});
    REQUIRE(again.tx.size() == 1);
    CHECK(again.tx[0].side == dp::client_side);
    CHECK(h.counter(worker_counter::mid_flow_rst_sent) == 1);
  }
}
