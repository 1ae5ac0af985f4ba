// Flow ownership with several workers (pipeline_steering.cc): DSR packets stay
// on the worker that received them; full NAT stays there too with hardware RSS
// and is checked against the software model otherwise, its source ports chosen
// so the backend's replies map to the owner; dnat is handed to the owner of the
// client's address and port in both directions. Handoffs leave in one enqueue
// per destination and every packet is counted once.
#include <arpa/inet.h>
#include <catch2/catch_test_macros.hpp>

#include "pipeline_harness.h"

using namespace sluice;
using namespace sluice::test;
using abi::fwd_mode;

namespace {

const ip_addr VIP4 = ip("192.0.2.10"), B4 = ip("203.0.113.11"), POOL4 = ip("192.0.2.200");
constexpr uint8_t SYN = 0x02, SYNACK = 0x12, ACK = 0x10;

uint32_t get32(const bytes& b, size_t off) {
  return uint32_t(get16(b, off)) << 16 | get16(b, off + 2);
}

ip_addr client(uint32_t i) {
  return ip_addr::from_v4_be(htonl(0xc6336400u + i));
}

bytes syn_from(uint32_t c, uint16_t port) {
  return eth(own_mac, client_mac, 0x0800, ip4(client(c), VIP4, 6, tcp(port, 80, SYN)));
}

// Runs `frame` arriving at worker `rx_worker`; when handed off, runs the
// owner's ring. Returns the output and which worker produced it.
std::pair<run_result, int> deliver(harness& h, const bytes& frame, dp::side side,
                                   uint16_t rx_worker) {
  run_result r = h.run({frame}, side, 0, rx_worker);
  if (!r.tx.empty() || r.dropped)
    return {r, rx_worker};
  for (uint16_t w = 0; w < 2; ++w)
    if (h.handoff_pending(w))
      return {h.drain_handoff(w), w};
  return {r, -1};
}

} // namespace

TEST_CASE("full NAT with two workers: both directions are processed by the owner", "[steering]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.nat_pool = {POOL4};
  cfg.steering.software = true;
  harness h({s}, cfg, 2);
  int handed = 0;
  for (uint32_t c = 1; c <= 40; ++c) {
    uint16_t rx = uint16_t(c % 2); // where the "NIC" delivered it
    auto [fwd, owner] = deliver(h, syn_from(c, uint16_t(40000 + c)), dp::client_side, rx);
    REQUIRE(fwd.tx.size() == 1);
    REQUIRE(owner >= 0);
    handed += owner != rx;
    const bytes& out = fwd.tx[0].data;
    uint16_t nat_port = get16(out, 34);
    // The backend's reply arrives at the other worker first.
    bytes reply = eth(own_mac, backend_mac_for(B4), 0x0800,
                      ip4(B4, POOL4, 6, tcp(8080, nat_port, SYNACK, {}, 1, 1001)));
    auto [rep, rep_owner] = deliver(h, reply, dp::backend_side, uint16_t(1 - owner));
    REQUIRE(rep.tx.size() == 1);
    CHECK(rep_owner == owner);
    CHECK(rep.tx[0].side == dp::client_side);
    bytes want = eth(client_mac, own_mac, 0x0800,
                     ip4(VIP4, client(c), 6, tcp(80, uint16_t(40000 + c), SYNACK, {}, 1, 1001)));
    CHECK(rep.tx[0].data == want);
  }
  CHECK(handed > 0); // the software owner differs from the receiving worker for some flows
  CHECK(h.counter(worker_counter::handoff_out, 0) + h.counter(worker_counter::handoff_out, 1) > 0);
  CHECK(h.counter(worker_counter::flows_created, 0) + h.counter(worker_counter::flows_created, 1) ==
        40);
  CHECK(h.counter(worker_counter::flows_created, 0) > 0);
  CHECK(h.counter(worker_counter::flows_created, 1) > 0);
}

TEST_CASE("dnat with two workers: replies reach the worker owning the flow", "[steering]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dnat, {{"203.0.113.11", 1}}, 8080);
  bool software = GENERATE(false, true);
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.steering.software = software;
  harness h({s}, cfg, 2);
  for (uint32_t c = 1; c <= 20; ++c) {
    uint16_t port = uint16_t(50000 + c);
    auto [fwd, owner] = deliver(h, syn_from(c, port), dp::client_side, 0);
    REQUIRE(fwd.tx.size() == 1);
    bytes reply = eth(own_mac, backend_mac_for(B4), 0x0800,
                      ip4(B4, client(c), 6, tcp(8080, port, SYNACK, {}, 1, 1001)));
    for (uint16_t rx = 0; rx < 2; ++rx) {
      auto [rep, rep_owner] = deliver(h, reply, dp::backend_side, rx);
      REQUIRE(rep.tx.size() == 1);
      CHECK(rep_owner == owner);
    }
  }
}

TEST_CASE("DSR packets are never handed over: any worker picks the same backend", "[steering]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dsr_ipip,
                                  {{"203.0.113.11", 1}, {"203.0.113.12", 1}});
  bool software = GENERATE(false, true);
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.steering.software = software;
  harness h({s}, cfg, 2);
  for (uint32_t c = 1; c <= 20; ++c) {
    run_result first = h.run({syn_from(c, 1234)}, dp::client_side, 0, 0);
    bytes data =
        eth(own_mac, client_mac, 0x0800, ip4(client(c), VIP4, 6, tcp(1234, 80, ACK, bytes(10))));
    run_result second = h.run({data}, dp::client_side, 0, 1);
    REQUIRE(first.tx.size() == 1);
    REQUIRE(second.tx.size() == 1);
    // The outer destination (the backend) is the same from either worker.
    CHECK(get32(first.tx[0].data, 30) == get32(second.tx[0].data, 30));
  }
  CHECK(h.handoff_pending(0) + h.handoff_pending(1) == 0);
  CHECK(h.counter(worker_counter::handoff_out, 0) + h.counter(worker_counter::handoff_out, 1) == 0);
  CHECK(h.counter(worker_counter::rx_packets, 0) == 20);
  CHECK(h.counter(worker_counter::rx_packets, 1) == 20);
}

TEST_CASE("full NAT with hardware RSS: the forward packet stays where the NIC put it",
          "[steering]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::nat, {{"203.0.113.11", 1}}, 8080);
  dp::pipeline_config cfg = default_pipeline_config();
  cfg.nat_pool = {POOL4};
  cfg.steering.software = false;
  harness h({s}, cfg, 2);
  for (uint32_t c = 1; c <= 20; ++c) {
    uint16_t rx = uint16_t(c % 2);
    run_result r = h.run({syn_from(c, uint16_t(41000 + c))}, dp::client_side, 0, rx);
    REQUIRE(r.tx.size() == 1);
  }
  CHECK(h.counter(worker_counter::handoff_out, 0) + h.counter(worker_counter::handoff_out, 1) == 0);
  CHECK(h.counter(worker_counter::flows_created, 0) == 10);
  CHECK(h.counter(worker_counter::flows_created, 1) == 10);
}

TEST_CASE("dnat handoffs leave in one burst and are counted once", "[steering]") {
  service_config s = make_service("192.0.2.10", 80, 6, fwd_mode::dnat, {{"203.0.113.11", 1}}, 8080);
  harness h({s}, default_pipeline_config(), 2);
  std::vector<bytes> burst;
  for (uint32_t c = 1; c <= 32; ++c)
    burst.push_back(syn_from(c, uint16_t(30000 + c)));
  run_result r = h.run(burst, dp::client_side, 0, 0);
  uint64_t out0 = h.counter(worker_counter::handoff_out, 0);
  CHECK(out0 > 0);
  CHECK(out0 < 32);
  CHECK(r.tx.size() + out0 == 32);
  CHECK(h.handoff_pending(1) == out0);
  run_result owned = h.drain_handoff(1);
  CHECK(owned.tx.size() == out0);
  CHECK(h.counter(worker_counter::handoff_in, 1) == out0);
  // Received once, at worker 0; worker 1 counts them as handed in only.
  CHECK(h.counter(worker_counter::rx_packets, 0) == 32);
  CHECK(h.counter(worker_counter::rx_packets, 1) == 0);
}
