// Full-NAT source ports through the real worker pipeline: ports per backend
// endpoint (the same local port towards several backends at once), exhaustion
// counted per backend, first-freed-first reuse, eviction of the oldest closing
// flow when a backend's ports run out, replies that hash (Toeplitz, 5-tuple) to
// the worker owning the flow, and a 10-minute churn on a fake clock with no
// port reused towards a backend inside its TIME_WAIT.
#include <arpa/inet.h>
#include <catch2/catch_test_macros.hpp>
#include <map>
#include <set>

#include <rte_thash.h>

#include "pipeline_harness.h"

using namespace sluice;
using namespace sluice::test;
using abi::fwd_mode;

namespace {

const ip_addr VIP4 = test::ip("192.0.2.10"), POOL4 = test::ip("192.0.2.200");
constexpr uint8_t SYN = 0x02, ACK = 0x10, FIN = 0x01;

ip_addr client(uint32_t n) {
  return ip_addr::from_v4_be(htonl(0xc6330000u + n)); // 198.51.x.y
}

bytes from_client(uint32_t c, uint16_t sport, uint16_t vport, uint8_t flags, uint32_t seq = 1000,
                  uint32_t ack = 0) {
  return eth(own_mac, client_mac, 0x0800,
             ip4(client(c), VIP4, 6, tcp(sport, vport, flags, {}, seq, ack)));
}

// What left towards a backend: its address, its port and the local port used.
struct nat_out {
  ip_addr backend;
  uint16_t bport = 0;
  uint16_t local_port = 0;
};
nat_out parse_to_backend(const out_packet& o) {
  REQUIRE(o.side == dp::backend_side);
  REQUIRE(o.data.size() >= 54);
  nat_out n;
  uint32_t a;
  std::memcpy(&a, &o.data[30], 4);
  n.backend = ip_addr::from_v4_be(a);
  CHECK(ip_addr::from_v4_be([&] {
          uint32_t s;
          std::memcpy(&s, &o.data[26], 4);
          return s;
        }()) == POOL4);
  n.local_port = get16(o.data, 34);
  n.bport = get16(o.data, 36);
  return n;
}

bytes from_backend(const nat_out& n, uint8_t flags, uint32_t seq = 5000, uint32_t ack = 0) {
  return eth(own_mac, backend_mac_for(n.backend), 0x0800,
             ip4(n.backend, POOL4, 6, tcp(n.bport, n.local_port, flags, {}, seq, ack)));
}

dp::pipeline_config nat_cfg(uint16_t lo, uint16_t hi) {
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.nat_port_min = lo;
  cfg.nat_port_max = hi;
  cfg.nat_pool = {POOL4};
  return cfg;
}

} // namespace

TEST_CASE("one local port serves several backends at once; exhaustion is per backend",
          "[nat_ports]") {
  // Two services, one backend each, two local ports.
  service_config a = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  service_config b = make_service("192.0.2.10", 81, 6, fwd_mode::nat, {{"203.0.113.12", 1}}, 8080);
  harness h({a, b}, nat_cfg(2000, 2001));
  std::map<uint16_t, std::set<uint16_t>> ports; // VIP port -> local ports used
  for (uint16_t vport : {80, 81})
    for (uint16_t i = 0; i < 2; ++i) {
      run_result r = h.run({from_client(1, uint16_t(3000 + i), vport, SYN)});
      REQUIRE(r.tx.size() == 1);
      ports[vport].insert(parse_to_backend(r.tx[0]).local_port);
    }
  CHECK(ports[80] == std::set<uint16_t>{2000, 2001});
  CHECK(ports[81] == std::set<uint16_t>{2000, 2001});
  // A third connection to the first backend finds no port; the second backend
  // is not affected by the first one's exhaustion.
  CHECK(h.run({from_client(1, 3002, 80, SYN)}).dropped == 1);
  CHECK(h.drop_count(drop_reason::nat_port_exhausted) == 1);
  CHECK(h.backend_stats(h.backend_slot(test::ip("203.0.113.11"))).nat_port_exhausted == 1);
  CHECK(h.backend_stats(h.backend_slot(test::ip("203.0.113.12"))).nat_port_exhausted == 0);
  // Replies of both backends on the same local port reach their own client.
  nat_out to_a{test::ip("203.0.113.11"), 8080, 2000}, to_b{test::ip("203.0.113.12"), 8080, 2000};
  run_result ra = h.run({from_backend(to_a, SYN | ACK, 5000, 1001)}, dp::backend_side);
  run_result rb = h.run({from_backend(to_b, SYN | ACK, 5000, 1001)}, dp::backend_side);
  REQUIRE(ra.tx.size() == 1);
  REQUIRE(rb.tx.size() == 1);
  CHECK(get16(ra.tx[0].data, 34) == 80); // source port: the VIP port of service a
  CHECK(get16(rb.tx[0].data, 34) == 81);
}

TEST_CASE("a freed port goes to the back of the queue (first freed, first reused)", "[nat_ports]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  s.timeouts.syn_s = 1;
  harness h({s}, nat_cfg(2000, 2005));
  run_result r = h.run({from_client(1, 3000, 80, SYN)});
  REQUIRE(r.tx.size() == 1);
  CHECK(parse_to_backend(r.tx[0]).local_port == 2000);
  h.tick(3); // the half-open flow expires: 2000 is free again, behind 2001..2005
  std::vector<uint16_t> got;
  for (uint16_t i = 0; i < 6; ++i) {
    run_result n = h.run({from_client(2, uint16_t(4000 + i), 80, SYN)}, dp::client_side, 3);
    REQUIRE(n.tx.size() == 1);
    got.push_back(parse_to_backend(n.tx[0]).local_port);
  }
  CHECK(got == std::vector<uint16_t>{2001, 2002, 2003, 2004, 2005, 2000});
}

TEST_CASE("out of ports: the oldest closing flow of that backend is evicted", "[nat_ports]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  harness h({s}, nat_cfg(2000, 2002));
  std::vector<nat_out> flows;
  for (uint16_t i = 0; i < 3; ++i) {
    run_result r = h.run({from_client(1, uint16_t(3000 + i), 80, SYN)});
    REQUIRE(r.tx.size() == 1);
    flows.push_back(parse_to_backend(r.tx[0]));
    REQUIRE(h.run({from_backend(flows[i], SYN | ACK, 5000, 1001)}, dp::backend_side).tx.size() ==
            1);
    REQUIRE(h.run({from_client(1, uint16_t(3000 + i), 80, ACK, 1001, 5001)}).tx.size() == 1);
  }
  // Flow 2 closes first (backend FIN), then flow 0 (client FIN); flow 1 stays.
  REQUIRE(h.run({from_backend(flows[2], FIN | ACK, 5001, 1001)}, dp::backend_side).tx.size() == 1);
  REQUIRE(h.run({from_client(1, 3000, 80, FIN | ACK, 1001, 5001)}).tx.size() == 1);
  run_result r = h.run({from_client(1, 3100, 80, SYN)});
  REQUIRE(r.tx.size() == 1);
  CHECK(parse_to_backend(r.tx[0]).local_port == flows[2].local_port);
  CHECK(h.counter(worker_counter::nat_port_evictions) == 1);
  // The next one takes flow 0's port; then only established flows are left.
  r = h.run({from_client(1, 3101, 80, SYN)});
  REQUIRE(r.tx.size() == 1);
  CHECK(parse_to_backend(r.tx[0]).local_port == flows[0].local_port);
  CHECK(h.run({from_client(1, 3102, 80, SYN)}).dropped == 1);
  CHECK(h.drop_count(drop_reason::nat_port_exhausted) == 1);
  // The established flow still works both ways.
  CHECK(h.run({from_client(1, 3001, 80, ACK, 1001, 5001)}).tx.size() == 1);
  CHECK(h.run({from_backend(flows[1], ACK, 5001, 1001)}, dp::backend_side).tx.size() == 1);
}

TEST_CASE("with several workers, each reply's 5-tuple RSS hash selects the flow's owner",
          "[nat_ports]") {
  const uint16_t workers = 2;
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat,
                                  {{"203.0.113.11", 1}, {"203.0.113.12", 1}}, 8080);
  dp::pipeline_config cfg = nat_cfg(1024, 65535);
  harness h({s}, cfg, workers);
  const auto& key = cfg.steering.rss_key;
  uint32_t created[2] = {0, 0};
  for (uint32_t c = 0; c < 200; ++c) {
    // Offer the SYN to the worker a NIC's 5-tuple RSS would pick.
    uint16_t cport = uint16_t(10000 + c);
    uint32_t cw[3], ca, va;
    std::memcpy(&ca, client(c).v4_ptr(), 4);
    std::memcpy(&va, VIP4.v4_ptr(), 4);
    cw[0] = ntohl(ca);
    cw[1] = ntohl(va);
    cw[2] = uint32_t(cport) << 16 | 80;
    uint16_t owner = uint16_t((rte_softrss(cw, 3, key.data()) % 128) % workers);
    run_result r = h.run({from_client(c, cport, 80, SYN)}, dp::client_side, 0, owner);
    REQUIRE(r.tx.size() == 1);
    nat_out n = parse_to_backend(r.tx[0]);
    ++created[owner];
    // The NIC's view: Toeplitz over (backend, pool, bport, local port), RETA i % 2.
    uint32_t w[3];
    uint32_t ba, pa;
    std::memcpy(&ba, n.backend.v4_ptr(), 4);
    std::memcpy(&pa, POOL4.v4_ptr(), 4);
    w[0] = ntohl(ba);
    w[1] = ntohl(pa);
    w[2] = uint32_t(n.bport) << 16 | n.local_port;
    uint32_t hash = rte_softrss(w, 3, key.data());
    CHECK((hash % 128) % workers == owner);
    // The reply offered to its owner is translated there, without a handoff.
    run_result rep = h.run({from_backend(n, SYN | ACK, 5000, 1001)}, dp::backend_side, 0, owner);
    REQUIRE(rep.tx.size() == 1);
    CHECK(rep.tx[0].side == dp::client_side);
  }
  CHECK(created[0] > 50);
  CHECK(created[1] > 50);
  CHECK(h.counter(worker_counter::handoff_out, 0) + h.counter(worker_counter::handoff_out, 1) ==
        0); // replies arrived where the NIC would deliver them: no handoff
}

TEST_CASE("replies alone keep a full-NAT flow alive; a new state's timeout holds both ways",
          "[nat_ports]") {
  // A reply refreshes its own entry's deadline, not the forward entry's
  // (three lines per reply instead of four): the flow must live until the
  // later of the two, on the sweep, on the forward path and under eviction,
  // and a state change must end the reply's longer deadline.
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  s.timeouts.established_s = 100;
  s.timeouts.fin_s = 2;
  harness h({s}, nat_cfg(2000, 2010));
  run_result syn = h.run({from_client(1, 4000, 80, SYN)}, dp::client_side, 0);
  REQUIRE(syn.tx.size() == 1);
  const nat_out n = parse_to_backend(syn.tx[0]);
  REQUIRE(h.run({from_backend(n, SYN | ACK, 5000, 1001)}, dp::backend_side, 0).tx.size() == 1);
  REQUIRE(h.run({from_client(1, 4000, 80, ACK, 1001, 5001)}, dp::client_side, 0.1).tx.size() == 1);
  // A download: only the backend sends, every 60 s, for 300 s (three times
  // the idle timeout of the client's direction).
  for (double t = 60; t <= 300; t += 60) {
    h.tick(t);
    CHECK(h.run({from_backend(n, ACK, 5001, 1001)}, dp::backend_side, t).tx.size() == 1);
  }
  h.tick(390);
  CHECK(h.counter(worker_counter::flows_expired) == 0);
  CHECK(h.counter(worker_counter::flows_active) == 1);
  // The client's next packet finds its flow (not rescheduled, same port).
  run_result c = h.run({from_client(1, 4000, 80, ACK, 1001, 5001)}, dp::client_side, 395);
  REQUIRE(c.tx.size() == 1);
  CHECK(parse_to_backend(c.tx[0]).local_port == n.local_port);
  CHECK(h.counter(worker_counter::flows_created) == 1);
  // The backend closes: FIN state, 2 s, for both directions, although the
  // last reply had pushed its own deadline to 500 s.
  CHECK(h.run({from_backend(n, ACK, 5001, 1001)}, dp::backend_side, 400).tx.size() == 1);
  CHECK(h.run({from_backend(n, FIN | ACK, 5001, 1001)}, dp::backend_side, 401).tx.size() == 1);
  h.tick(404);
  CHECK(h.counter(worker_counter::flows_active) == 0);
  CHECK(h.counter(worker_counter::flows_expired) == 1);
}

TEST_CASE("eviction spares a flow that only its replies keep alive", "[nat_ports]") {
  // A table of 64 entries: 8 NAT flows (16 entries) kept alive by replies
  // only, then a SYN flood that must evict half-open flows, never them.
  dp::pipeline_config cfg = nat_cfg(2000, 2100);
  cfg.flow_capacity = 64;
  cfg.sweep_cycle_ms = 1000000000; // the sweep would put the deadlines right first
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  s.timeouts.established_s = 10;
  s.timeouts.syn_s = 30;
  harness h({s}, cfg);
  std::vector<nat_out> outs;
  for (uint16_t i = 0; i < 8; ++i) {
    run_result r = h.run({from_client(1, uint16_t(5000 + i), 80, SYN)}, dp::client_side, 0);
    REQUIRE(r.tx.size() == 1);
    outs.push_back(parse_to_backend(r.tx[0]));
    REQUIRE(
        h.run({from_backend(outs.back(), SYN | ACK, 5000, 1001)}, dp::backend_side, 0).tx.size() ==
        1);
    REQUIRE(h.run({from_client(1, uint16_t(5000 + i), 80, ACK, 1001, 5001)}, dp::client_side, 0)
                .tx.size() == 1);
  }
  for (const auto& o : outs) // the forward deadlines end at 10 s, the replies' at 18 s
    REQUIRE(h.run({from_backend(o, ACK, 5001, 1001)}, dp::backend_side, 8).tx.size() == 1);
  // At 12 s, without a sweep, a flood fills the table: the flows look expired
  // by their forward entries only.
  for (uint16_t i = 0; i < 300; ++i)
    h.run({from_client(2, uint16_t(100 + i), 80, SYN)}, dp::client_side, 12);
  CHECK(h.counter(worker_counter::flows_evicted) > 0);
  const uint64_t created = h.counter(worker_counter::flows_created);
  for (uint16_t i = 0; i < 8; ++i) {
    INFO("flow " << i);
    CHECK(h.run({from_backend(outs[i], ACK, 5001, 1001)}, dp::backend_side, 13).tx.size() == 1);
    run_result c =
        h.run({from_client(1, uint16_t(5000 + i), 80, ACK, 1001, 5001)}, dp::client_side, 13);
    REQUIRE(c.tx.size() == 1);
    CHECK(parse_to_backend(c.tx[0]).local_port == outs[i].local_port);
  }
  CHECK(h.counter(worker_counter::flows_created) == created);
}

TEST_CASE("churn: 10 simulated minutes, no failure, no port reused inside a backend's TIME_WAIT",
          "[nat_ports]") {
  // Three backends; 2,048 local ports each (per backend); 120 connections per
  // simulated second opened and closed (SYN, SYN-ACK, ACK, FIN both ways),
  // closing entries kept 10 s. A LIFO pool would hand a port back to the same
  // backend ~10 s after it was freed; FIFO keeps it away for > 30 s.
  service_config s =
      make_service("192.0.2.10", 80, 6, fwd_mode::nat,
                   {{"203.0.113.11", 1}, {"203.0.113.12", 1}, {"203.0.113.13", 1}}, 8080);
  s.timeouts.fin_s = 10;
  s.timeouts.syn_s = 10;
  dp::pipeline_config cfg = nat_cfg(1024, 3071);
  cfg.flow_capacity = 8192;
  harness h({s}, cfg);
  const double time_wait_s = 30;
  std::map<std::pair<ip_addr, uint16_t>, double> closed_at; // (backend, local port) -> time
  uint64_t opened = 0, reused = 0;
  double min_gap = 1e9;
  uint32_t next_client = 0;
  for (int sec = 0; sec < 600; ++sec) {
    const double t = sec;
    for (int half = 0; half < 2; ++half) {
      std::vector<bytes> syns;
      std::vector<std::pair<uint32_t, uint16_t>> who;
      for (int i = 0; i < 60; ++i) {
        uint32_t c = next_client++;
        who.push_back({c % 50000, uint16_t(1024 + c % 60000)});
        syns.push_back(from_client(who.back().first, who.back().second, 80, SYN));
      }
      run_result r = h.run(syns, dp::client_side, t);
      REQUIRE(r.tx.size() == syns.size());
      std::vector<nat_out> ns;
      std::vector<bytes> synack, ack_fin, fin_ack, last_ack;
      for (size_t i = 0; i < r.tx.size(); ++i) {
        nat_out n = parse_to_backend(r.tx[i]);
        auto k = std::make_pair(n.backend, n.local_port);
        if (auto it = closed_at.find(k); it != closed_at.end()) {
          ++reused;
          min_gap = std::min(min_gap, t - it->second);
        }
        ns.push_back(n);
        synack.push_back(from_backend(n, SYN | ACK, 5000, 1001));
        ack_fin.push_back(from_client(who[i].first, who[i].second, 80, FIN | ACK, 1001, 5001));
        fin_ack.push_back(from_backend(n, FIN | ACK, 5001, 1002));
        last_ack.push_back(from_client(who[i].first, who[i].second, 80, ACK, 1002, 5002));
      }
      opened += ns.size();
      REQUIRE(h.run(synack, dp::backend_side, t).tx.size() == ns.size());
      REQUIRE(h.run(ack_fin, dp::client_side, t).tx.size() == ns.size());
      REQUIRE(h.run(fin_ack, dp::backend_side, t).tx.size() == ns.size());
      REQUIRE(h.run(last_ack, dp::client_side, t).tx.size() == ns.size());
      for (const nat_out& n : ns)
        closed_at[{n.backend, n.local_port}] = t;
    }
    h.tick(t + 0.5);
  }
  INFO("opened " << opened << ", reused " << reused << ", shortest reuse gap " << min_gap << " s");
  CHECK(opened == 72000);
  CHECK(reused > 0); // the range is small enough that ports do come back
  CHECK(min_gap >= time_wait_s);
  for (auto r : {drop_reason::nat_port_exhausted, drop_reason::flow_table_full,
                 drop_reason::reply_no_flow, drop_reason::reply_tuple_conflict})
    CHECK(h.drop_count(r) == 0);
}
