// Flow state under floods and churn, through the real worker pipeline: a
// 1,024-entry table holding 400 established flows (NAT and DSR) takes 100,000
// spoofed SYNs, then ACKs, then UDP datagrams; every established flow keeps
// its backend and 100 new NAT connections after each flood all succeed. Then
// full-NAT connections opened and closed at the table's capacity rate for 10
// simulated minutes (the harness's clock is simulated: each burst carries its
// time) never fail.
#include <arpa/inet.h>
#include <catch2/catch_test_macros.hpp>
#include <map>

#include "pipeline_harness.h"

using namespace sluice;
using namespace sluice::test;
using abi::fwd_mode;

namespace {

const ip_addr VIP_NAT = ip("192.0.2.10"), VIP_DSR = ip("192.0.2.20"), POOL4 = ip("192.0.2.200");
constexpr uint8_t SYN = 0x02, ACK = 0x10, FIN = 0x01, SYNACK = 0x12;
constexpr uint16_t BPORT = 8080;

ip_addr client_addr(uint32_t i) {
  return ip_addr::from_v4_be(htonl(0x0a000000u + i)); // 10.x.y.z
}

bytes to_vip(const ip_addr& vip, uint32_t client, uint16_t sport, uint8_t flags,
             uint8_t proto = 6) {
  bytes l4 = proto == 6 ? tcp(sport, 80, flags) : udp(sport, 80, bytes(16, 1));
  return eth(own_mac, client_mac, 0x0800, ip4(client_addr(client), vip, proto, l4));
}

std::vector<service_config> services() {
  std::vector<std::pair<const char*, uint16_t>> b = {
      {"203.0.113.11", 1}, {"203.0.113.12", 1}, {"203.0.113.13", 1}};
  return {make_service("192.0.2.10", 80, 6, fwd_mode::nat, b, BPORT),
          make_service("192.0.2.20", 80, 6, fwd_mode::dsr_ipip, b),
          make_service("192.0.2.10", 80, 17, fwd_mode::nat, b, BPORT),
          make_service("192.0.2.20", 80, 17, fwd_mode::dsr_ipip, b)};
}

dp::pipeline_config small_table() {
  dp::pipeline_config c = default_pipeline_config();
  c.flow_capacity = 1024;
  return c;
}

// A NAT connection as the backend sees it.
struct nat_conn {
  uint32_t client;
  uint16_t sport;
  uint8_t backend = 0; // last byte of the backend address (its MAC's last byte)
  uint16_t local_port = 0;
};

bytes from_backend(const nat_conn& c, uint8_t flags) {
  ip_addr b = ip_addr::from_v4_be(htonl(0xcb007100u + c.backend)); // 203.0.113.x
  return eth(own_mac, backend_mac_for(b), 0x0800,
             ip4(b, POOL4, 6, tcp(BPORT, c.local_port, flags, {}, 5000, 1001)));
}

// Runs `frames` in bursts of up to 64 at time `t`; returns every output.
std::vector<out_packet> run_bursts(harness& h, const std::vector<bytes>& frames, dp::side rx,
                                   double t, uint32_t* dropped = nullptr) {
  std::vector<out_packet> out;
  for (size_t i = 0; i < frames.size(); i += 64) {
    std::vector<bytes> burst(frames.begin() + long(i),
                             frames.begin() + long(std::min(frames.size(), i + 64)));
    run_result r = h.run(burst, rx, t);
    for (auto& o : r.tx)
      out.push_back(std::move(o));
    if (dropped)
      *dropped += r.dropped;
  }
  return out;
}

std::string drops_named(harness& h) {
  std::string s;
  auto d = h.drops();
  for (size_t i = 0; i < drop_reason_count; ++i)
    if (d[i])
      s += std::string(drop_reason_names[i]) + "=" + std::to_string(d[i]) + " ";
  s += "| ";
  for (size_t i = 0; i < worker_counter_count; ++i)
    if (h.counter(worker_counter(i)))
      s += std::string(worker_counter_names[i]) + "=" +
           std::to_string(h.counter(worker_counter(i))) + " ";
  return s;
}

// Opens NAT connections (SYN, SYN-ACK, ACK); every step must pass. Fills in
// the backend and local port of each.
void open_nat(harness& h, std::vector<nat_conn>& cs, double t) {
  std::vector<bytes> syns;
  for (auto& c : cs)
    syns.push_back(to_vip(VIP_NAT, c.client, c.sport, SYN));
  uint32_t dropped = 0;
  auto out = run_bursts(h, syns, dp::client_side, t, &dropped);
  INFO("drops so far: " << drops_named(h));
  REQUIRE(dropped == 0);
  REQUIRE(out.size() == cs.size());
  for (size_t i = 0; i < cs.size(); ++i) {
    REQUIRE(out[i].side == dp::backend_side);
    cs[i].backend = out[i].data[5];
    cs[i].local_port = get16(out[i].data, 34);
  }
  std::vector<bytes> synacks;
  for (auto& c : cs)
    synacks.push_back(from_backend(c, SYNACK));
  out = run_bursts(h, synacks, dp::backend_side, t, &dropped);
  INFO("after the SYN-ACKs: " << drops_named(h));
  REQUIRE(dropped == 0);
  REQUIRE(out.size() == cs.size());
  for (auto& o : out)
    REQUIRE(o.side == dp::client_side);
  std::vector<bytes> acks;
  for (auto& c : cs)
    acks.push_back(to_vip(VIP_NAT, c.client, c.sport, ACK));
  out = run_bursts(h, acks, dp::client_side, t, &dropped);
  REQUIRE(dropped == 0);
  REQUIRE(out.size() == cs.size());
}

// Closes NAT connections: client FIN, backend FIN-ACK, client ACK.
void close_nat(harness& h, const std::vector<nat_conn>& cs, double t) {
  std::vector<bytes> a, b, c2;
  for (auto& c : cs) {
    a.push_back(to_vip(VIP_NAT, c.client, c.sport, FIN | ACK));
    b.push_back(from_backend(c, FIN | ACK));
    c2.push_back(to_vip(VIP_NAT, c.client, c.sport, ACK));
  }
  uint32_t dropped = 0;
  REQUIRE(run_bursts(h, a, dp::client_side, t, &dropped).size() == cs.size());
  REQUIRE(run_bursts(h, b, dp::backend_side, t, &dropped).size() == cs.size());
  REQUIRE(run_bursts(h, c2, dp::client_side, t, &dropped).size() == cs.size());
  REQUIRE(dropped == 0);
}

} // namespace

TEST_CASE("established flows and new NAT connections survive SYN, ACK and UDP floods", "[flood]") {
  harness h(services(), small_table());
  double t = 0;
  // 200 NAT connections (400 entries) and 200 DSR flows: 400 established flows.
  std::vector<nat_conn> nat;
  for (uint32_t i = 0; i < 200; ++i)
    nat.push_back({1000 + i, uint16_t(20000 + i)});
  open_nat(h, nat, t);
  std::vector<bytes> dsr_syn, dsr_ack;
  for (uint32_t i = 0; i < 200; ++i) {
    dsr_syn.push_back(to_vip(VIP_DSR, 2000 + i, 30000, SYN));
    dsr_ack.push_back(to_vip(VIP_DSR, 2000 + i, 30000, ACK));
  }
  auto dsr_out = run_bursts(h, dsr_syn, dp::client_side, t);
  REQUIRE(dsr_out.size() == 200);
  REQUIRE(run_bursts(h, dsr_ack, dp::client_side, t).size() == 200);
  std::vector<uint8_t> dsr_backend;
  for (auto& o : dsr_out)
    dsr_backend.push_back(o.data[5]);

  auto check_established = [&](double at) {
    uint64_t created = h.counter(worker_counter::flows_created);
    std::vector<bytes> fw;
    for (auto& c : nat)
      fw.push_back(to_vip(VIP_NAT, c.client, c.sport, ACK));
    auto out = run_bursts(h, fw, dp::client_side, at);
    REQUIRE(out.size() == nat.size());
    for (size_t i = 0; i < nat.size(); ++i) {
      CHECK(out[i].data[5] == nat[i].backend);
      CHECK(get16(out[i].data, 34) == nat[i].local_port);
    }
    std::vector<bytes> back;
    for (auto& c : nat)
      back.push_back(from_backend(c, ACK));
    CHECK(run_bursts(h, back, dp::backend_side, at).size() == nat.size());
    out = run_bursts(h, dsr_ack, dp::client_side, at);
    REQUIRE(out.size() == dsr_ack.size());
    for (size_t i = 0; i < out.size(); ++i)
      CHECK(out[i].data[5] == dsr_backend[i]);
    CHECK(h.counter(worker_counter::flows_created) == created); // none was rescheduled
  };
  uint32_t next_client = 100000;
  // 100 new connections, 20 handshakes at a time (a handshake's SYN-ACK
  // comes back while the next ones start).
  auto new_connections = [&](double at) {
    for (int wave = 0; wave < 5; ++wave) {
      std::vector<nat_conn> fresh;
      for (uint32_t i = 0; i < 20; ++i)
        fresh.push_back({next_client++, 40000});
      open_nat(h, fresh, at);
      close_nat(h, fresh, at);
    }
  };
  check_established(t);

  struct flood {
    const char* name;
    uint8_t proto;
    uint8_t flags;
  };
  uint32_t spoofed = 1u << 20;
  for (flood f : {flood{"SYN", 6, SYN}, flood{"ACK", 6, ACK}, flood{"UDP", 17, 0}}) {
    INFO(f.name << " flood");
    for (int i = 0; i < 100000; i += 64) {
      std::vector<bytes> burst;
      for (int j = 0; j < 64 && i + j < 100000; ++j, ++spoofed)
        burst.push_back(
            to_vip(spoofed % 2 ? VIP_NAT : VIP_DSR, spoofed, uint16_t(spoofed), f.flags, f.proto));
      h.run(burst, dp::client_side, t);
      t += 0.0005; // 100,000 packets in ~0.8 s
    }
    check_established(t);
    new_connections(t);
    check_established(t);
  }
  CHECK(h.counter(worker_counter::flows_evicted_established) == 0);
  CHECK(h.counter(worker_counter::flows_evicted_half_open) > 0);
  CHECK(h.counter(worker_counter::flows_evicted_unconfirmed) > 0);
  CHECK(h.drop_count(drop_reason::flow_table_full) == 0);
}

TEST_CASE("full-NAT churn at the table's capacity rate for 10 simulated minutes", "[flood]") {
  harness h(services(), small_table());
  // 200 connections a second: 400 entries a second into 1,024, while a closed
  // connection's entries stay in time_wait for 7 s: only eviction of closing
  // entries makes room.
  uint32_t client = 0;
  uint64_t opened = 0;
  for (int sec = 0; sec < 600; ++sec) {
    std::vector<nat_conn> cs;
    for (int i = 0; i < 200; ++i, ++client)
      cs.push_back({client % 50000, uint16_t(1024 + client / 50000 + (client % 7) * 1000)});
    open_nat(h, cs, sec);
    close_nat(h, cs, sec + 0.5);
    opened += cs.size();
  }
  CHECK(opened == 120000);
  CHECK(h.counter(worker_counter::flows_evicted_established) == 0);
  CHECK(h.counter(worker_counter::flows_evicted_closing) > 0);
  CHECK(h.drop_count(drop_reason::flow_table_full) == 0);
  CHECK(h.drop_count(drop_reason::nat_port_exhausted) == 0);
}
