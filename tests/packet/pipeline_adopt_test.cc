// Flow hand-over through the real worker pipeline (hitless restart): flows
// exported by one pipeline, written to and read back from a flow snapshot, and
// adopted by a fresh pipeline with its own shared memory keep their backend,
// their full-NAT source port (reserved, so never handed out twice) and their
// state; what cannot be adopted is refused and counted; a damaged snapshot is
// refused with a reason.
#include <arpa/inet.h>
#include <catch2/catch_test_macros.hpp>
#include <cstdio>
#include <fstream>
#include <map>

#include "flow_snapshot.h"
#include "flow_states.h"
#include "pipeline_harness.h"

using namespace sluice;
using namespace sluice::test;
using abi::fwd_mode;

namespace {

const ip_addr VIP4 = test::ip("192.0.2.10"), POOL4 = test::ip("192.0.2.200");
constexpr uint8_t SYN = 0x02, ACK = 0x10, PSH = 0x08;

ip_addr client(uint32_t n) {
  return ip_addr::from_v4_be(htonl(0xc6330000u + n)); // 198.51.x.y
}

bytes from_client(uint32_t c, uint16_t vport, uint8_t flags, const bytes& payload = {},
                  uint32_t seq = 1000, uint32_t ack = 0) {
  return eth(own_mac, client_mac, 0x0800,
             ip4(client(c), VIP4, 6, tcp(uint16_t(4000 + c), vport, flags, payload, seq, ack)));
}

ip_addr dst_of(const out_packet& o) { // IPv4 destination (outer for ipip)
  uint32_t a;
  std::memcpy(&a, &o.data[30], 4);
  return ip_addr::from_v4_be(a);
}
ip_addr src_of(const out_packet& o) {
  uint32_t a;
  std::memcpy(&a, &o.data[26], 4);
  return ip_addr::from_v4_be(a);
}

dp::pipeline_config nat_cfg() {
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.nat_port_min = 2000; // two ports: adopting both leaves none for a new flow
  cfg.nat_port_max = 2001;
  cfg.nat_pool = {POOL4};
  return cfg;
}

std::string temp_path(const char* tag) {
  return "/tmp/sluice-adopt-test-" + std::to_string(getpid()) + "-" + tag;
}

} // namespace

TEST_CASE("full-NAT flows survive a hand-over: same backend, same source port, reserved",
          "[adopt]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  std::map<uint32_t, uint16_t> local_port; // client -> NAT source port
  std::vector<dp::flow_sync_record> recs;
  {
    harness a({s}, nat_cfg());
    for (uint32_t c : {1u, 2u}) {
      run_result r = a.run({from_client(c, 80, SYN)});
      REQUIRE(r.tx.size() == 1);
      REQUIRE(r.tx[0].side == dp::backend_side);
      CHECK(src_of(r.tx[0]) == POOL4);
      uint16_t lport = get16(r.tx[0].data, 34);
      local_port[c] = lport;
      bytes synack =
          eth(own_mac, backend_mac_for(test::ip("203.0.113.11")), 0x0800,
              ip4(test::ip("203.0.113.11"), POOL4, 6, tcp(8080, lport, SYN | ACK, {}, 5000, 1001)));
      r = a.run({synack}, dp::backend_side);
      REQUIRE(r.tx.size() == 1);
      REQUIRE(a.run({from_client(c, 80, ACK, {}, 1001, 5001)}).tx.size() == 1);
    }
    a.worker(0, 1.0).export_flows(recs);
  }
  REQUIRE(recs.size() == 2);
  for (const auto& r : recs) {
    CHECK(r.mode == uint8_t(fwd_mode::nat));
    CHECK(r.state == uint8_t(flow_state::established));
    CHECK(ip_addr::from_v6(r.nat_addr) == POOL4);
    CHECK(ntohs(r.backend_port) == 8080);
    CHECK(r.remaining_ms > 0);
  }

  // Through the file, as a restart does.
  const std::string path = temp_path("nat");
  dp::flow_snapshot snap{1, recs};
  REQUIRE(dp::write_flow_snapshot(path, snap));
  auto back = dp::read_flow_snapshot(path);
  REQUIRE(back);
  unlink(path.c_str());
  REQUIRE(back->n_workers == 1);
  REQUIRE(back->records.size() == 2);
  CHECK(std::memcmp(back->records.data(), recs.data(), recs.size() * sizeof(recs[0])) == 0);

  harness b({s}, nat_cfg());
  dp::adopt_summary sum;
  b.worker(0).adopt_flows(back->records.data(), back->records.size(), sum);
  CHECK(sum.adopted == 2);
  CHECK(sum.refused_total() == 0);
  CHECK(b.counter(worker_counter::flows_adopted) == 2);
  CHECK(b.counter(worker_counter::flows_active) == 2);

  for (uint32_t c : {1u, 2u}) {
    // Mid-flow data from the client: no RST, the same backend and source port.
    run_result r = b.run({from_client(c, 80, ACK | PSH, {'h', 'i'}, 1001, 5001)});
    REQUIRE(r.tx.size() == 1);
    CHECK(r.tx[0].side == dp::backend_side);
    CHECK(dst_of(r.tx[0]) == test::ip("203.0.113.11"));
    CHECK(src_of(r.tx[0]) == POOL4);
    CHECK(get16(r.tx[0].data, 34) == local_port[c]);
    // The backend's answer goes back to the client from the VIP.
    bytes reply = eth(own_mac, backend_mac_for(test::ip("203.0.113.11")), 0x0800,
                      ip4(test::ip("203.0.113.11"), POOL4, 6,
                          tcp(8080, local_port[c], ACK | PSH, {'o', 'k'}, 5001, 1003)));
    r = b.run({reply}, dp::backend_side);
    REQUIRE(r.tx.size() == 1);
    CHECK(r.tx[0].side == dp::client_side);
    CHECK(src_of(r.tx[0]) == VIP4);
    CHECK(dst_of(r.tx[0]) == client(c));
    CHECK(get16(r.tx[0].data, 34) == 80);
    CHECK(get16(r.tx[0].data, 36) == 4000 + c);
  }
  CHECK(b.drop_count(drop_reason::mid_flow_no_state) == 0);
  // Both ports are leased by adopted flows: a new connection finds none.
  b.run({from_client(3, 80, SYN)});
  CHECK(b.drop_count(drop_reason::nat_port_exhausted) == 1);
  // Adopting the same flows again changes nothing.
  dp::adopt_summary again;
  b.worker(0).adopt_flows(back->records.data(), back->records.size(), again);
  CHECK(again.adopted == 0);
  CHECK(again.refused[size_t(dp::adopt_refusal::exists)] == 2);
  CHECK(b.counter(worker_counter::flows_adopt_refused) == 2);
}

TEST_CASE("dnat and dsr-ipip flows keep their backend across a hand-over; refusals counted",
          "[adopt]") {
  service_config dnat =
      make_service("192.0.2.10", 81, 6, fwd_mode::dnat, {{"203.0.113.11", 1}, {"203.0.113.12", 1}});
  service_config dsr = make_service("192.0.2.10", 82, 6, fwd_mode::dsr_ipip,
                                    {{"203.0.113.11", 1}, {"203.0.113.12", 1}});
  std::map<std::pair<uint32_t, uint16_t>, ip_addr> backend_of;
  std::vector<dp::flow_sync_record> recs;
  {
    harness a({dnat, dsr});
    for (uint32_t c = 1; c <= 40; ++c)
      for (uint16_t vport : {81, 82}) {
        run_result r = a.run({from_client(c, vport, SYN)});
        REQUIRE(r.tx.size() == 1);
        backend_of[{c, vport}] = dst_of(r.tx[0]);
      }
    a.worker(0, 0.5).export_flows(recs);
  }
  REQUIRE(recs.size() == 80);

  // The new process's config has a third backend: Maglev would move some of
  // these flows; the adopted state keeps every one where it was.
  dnat.backends.push_back(dnat.backends[0]);
  dnat.backends.back().addr = test::ip("203.0.113.13");
  dsr.backends.push_back(dnat.backends.back());
  harness b({dnat, dsr});
  dp::adopt_summary sum;
  b.worker(0).adopt_flows(recs.data(), recs.size(), sum);
  CHECK(sum.adopted == 80);
  uint32_t moved_without_state = 0;
  for (uint32_t c = 1; c <= 40; ++c)
    for (uint16_t vport : {81, 82}) {
      run_result r = b.run({from_client(c, vport, ACK, {}, 1001, 5001)});
      REQUIRE(r.tx.size() == 1);
      CHECK(dst_of(r.tx[0]) == backend_of[{c, vport}]);
    }
  // Fresh clients do use the third backend (the check above is not vacuous).
  for (uint32_t c = 100; c < 140; ++c) {
    run_result r = b.run({from_client(c, 82, SYN)});
    REQUIRE(r.tx.size() == 1);
    moved_without_state += dst_of(r.tx[0]) == test::ip("203.0.113.13");
  }
  CHECK(moved_without_state > 0);

  // dnat replies come back from the VIP.
  bytes reply = eth(own_mac, backend_mac_for(backend_of[{1, 81}]), 0x0800,
                    ip4(backend_of[{1, 81}], client(1), 6, tcp(81, 4001, ACK, {}, 5001, 1001)));
  run_result r = b.run({reply}, dp::backend_side);
  REQUIRE(r.tx.size() == 1);
  CHECK(src_of(r.tx[0]) == VIP4);

  // Records that no longer match the config are refused, by reason.
  std::vector<dp::flow_sync_record> bad(4, recs[0]);
  bad[0].client_port = htons(9999);
  bad[0].vip_port = htons(99); // no such service
  bad[1].client_port = htons(9998);
  std::memcpy(bad[1].backend, test::ip("203.0.113.99").bytes.data(), 16); // backend gone
  bad[2].family = 5;
  bad[3].client_port = htons(9997);
  bad[3].mode = uint8_t(fwd_mode::nat); // the service's mode changed
  dp::adopt_summary refused;
  b.worker(0).adopt_flows(bad.data(), bad.size(), refused);
  CHECK(refused.adopted == 0);
  CHECK(refused.refused[size_t(dp::adopt_refusal::no_service)] == 2);
  CHECK(refused.refused[size_t(dp::adopt_refusal::no_backend)] == 1);
  CHECK(refused.refused[size_t(dp::adopt_refusal::bad_record)] == 1);
}

TEST_CASE("a damaged or foreign flow snapshot is refused with a reason", "[adopt]") {
  const std::string path = temp_path("damaged");
  auto none = dp::read_flow_snapshot(path);
  REQUIRE(none);
  CHECK(none->records.empty());
  CHECK(none->n_workers == 0);

  dp::flow_snapshot snap;
  snap.n_workers = 2;
  snap.records.resize(3);
  snap.records[1].hash = 42;
  REQUIRE(dp::write_flow_snapshot(path, snap));
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(32 + 96 + 80); // record 1's hash
    f.put(7);
  }
  auto damaged = dp::read_flow_snapshot(path);
  REQUIRE(!damaged);
  CHECK(damaged.error_message().find("checksum") != std::string::npos);

  REQUIRE(dp::write_flow_snapshot(path, snap));
  REQUIRE(truncate(path.c_str(), 32 + 96 * 2 + 10) == 0);
  auto cut = dp::read_flow_snapshot(path);
  REQUIRE(!cut);
  CHECK(cut.error_message().find("truncated") != std::string::npos);

  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << "not a snapshot at all, but long enough to hold a header";
  }
  auto foreign = dp::read_flow_snapshot(path);
  REQUIRE(!foreign);
  CHECK(foreign.error_message().find("magic") != std::string::npos);
  unlink(path.c_str());
}

TEST_CASE("a snapshot of one worker adopted by two: every flow on its owner, or refused",
          "[adopt]") {
  service_config nat =
      make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  service_config dnat =
      make_service("192.0.2.10", 81, 6, fwd_mode::dnat, {{"203.0.113.11", 1}, {"203.0.113.12", 1}});
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.nat_pool = {POOL4};
  std::map<std::pair<uint32_t, uint16_t>, ip_addr> backend_of;
  std::map<uint32_t, uint16_t> local_port;
  std::vector<dp::flow_sync_record> recs;
  {
    harness a({nat, dnat}, cfg);
    for (uint32_t c = 1; c <= 32; ++c)
      for (uint16_t vport : {80, 81}) {
        run_result r = a.run({from_client(c, vport, SYN)});
        REQUIRE(r.tx.size() == 1);
        backend_of[{c, vport}] = dst_of(r.tx[0]);
        if (vport == 80)
          local_port[c] = get16(r.tx[0].data, 34);
      }
    a.worker(0).export_flows(recs);
  }
  REQUIRE(recs.size() == 64);

  dp::pipeline_config two = cfg;
  two.steering.software = true;
  harness b({nat, dnat}, two, 2);
  b.worker(0);
  b.worker(1);
  uint32_t nat_adopted = 0, nat_refused = 0;
  for (const auto& r : recs) {
    const uint16_t w = b.worker(0).owner_of_flow(r);
    REQUIRE(w < 2);
    dp::adopt_summary one;
    b.worker(w).adopt_flows(&r, 1, one);
    const uint32_t c = ntohl(ip_addr::from_v6(r.client).v4_be()) - 0xc6330000u;
    const uint16_t vport = ntohs(r.vip_port);
    if (vport == 81) {
      CHECK(one.adopted == 1); // dnat: one owner for both directions, always adoptable
    } else if (one.adopted == 1) {
      ++nat_adopted;
    } else {
      // The forward and the reply tuple hash to different workers now.
      CHECK(one.refused[size_t(dp::adopt_refusal::nat_port)] == 1);
      ++nat_refused;
      continue;
    }
    // The owner forwards the flow's next segment itself, to the same backend.
    run_result out = b.run({from_client(c, vport, ACK, {}, 1001, 5001)}, dp::client_side, 0, w);
    REQUIRE(out.tx.size() == 1);
    CHECK(dst_of(out.tx[0]) == backend_of[{c, vport}]);
    if (vport == 80)
      CHECK(get16(out.tx[0].data, 34) == local_port[c]);
  }
  CHECK(b.handoff_pending(0) + b.handoff_pending(1) == 0);
  CHECK(nat_adopted + nat_refused == 32);
  CHECK(nat_adopted > 0);
  CHECK(b.counter(worker_counter::flows_adopted, 0) + b.counter(worker_counter::flows_adopted, 1) ==
        32 + nat_adopted);
}
