// The rte_flow rules that steer dnat by the client's fields (dnat_flow_rules.h):
// their pattern and RSS action, that a NIC following them delivers both
// directions of a flow to the worker the software model names as its owner,
// and which endpoints a published table asks rules for. No EAL: the rules are
// only built, never validated against a port (tests/integration/
// steering_pcap_test.py runs the fallback through the real binary).
#include <catch2/catch_test_macros.hpp>
#include <cstring>
#include <netinet/in.h>
#include <random>

#include <rte_byteorder.h>

#include "dnat_flow_rules.h"
#include "rss_model.h"

using namespace sluice;
using namespace sluice::dp;

namespace {

const std::array<uint8_t, 40> key = [] {
  std::array<uint8_t, 40> k{};
  for (size_t i = 0; i < k.size(); ++i)
    k[i] = i % 2 ? 0x5a : 0x6d;
  return k;
}();

std::vector<uint16_t> reta_of(uint16_t workers) {
  std::vector<uint16_t> r(128);
  for (uint16_t i = 0; i < r.size(); ++i)
    r[i] = uint16_t(i % workers);
  return r;
}

ip_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return ip_addr::from_v4_be(
      rte_cpu_to_be_32(uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d));
}

struct packet4 {
  uint32_t src_be, dst_be;
  uint16_t sport, dport; // host order
  uint8_t proto;
};

// A NIC applying one rule: does the packet match, and if so which queue does
// the RSS action choose (Toeplitz over the fields the RSS types name, queue
// list indexed by hash modulo its length).
bool nic_matches(const dnat_flow_rule& r, const packet4& p) {
  const auto* spec = static_cast<const rte_flow_item_ipv4*>(r.items[1].spec);
  const auto* mask = static_cast<const rte_flow_item_ipv4*>(r.items[1].mask);
  if ((p.proto & mask->hdr.next_proto_id) != spec->hdr.next_proto_id ||
      (p.src_be & mask->hdr.src_addr) != spec->hdr.src_addr ||
      (p.dst_be & mask->hdr.dst_addr) != spec->hdr.dst_addr)
    return false;
  const auto* tspec = static_cast<const rte_flow_item_tcp*>(r.items[2].spec);
  const auto* tmask = static_cast<const rte_flow_item_tcp*>(r.items[2].mask);
  return (rte_cpu_to_be_16(p.sport) & tmask->hdr.src_port) == tspec->hdr.src_port &&
         (rte_cpu_to_be_16(p.dport) & tmask->hdr.dst_port) == tspec->hdr.dst_port;
}

uint16_t nic_queue(const dnat_flow_rule& r, const packet4& p) {
  const bool src = r.rss.types & RTE_ETH_RSS_L3_SRC_ONLY;
  REQUIRE(src == bool(r.rss.types & RTE_ETH_RSS_L4_SRC_ONLY));
  REQUIRE(src != bool(r.rss.types & RTE_ETH_RSS_L3_DST_ONLY));
  uint8_t in[6];
  const uint32_t a = src ? p.src_be : p.dst_be;
  const uint16_t port = rte_cpu_to_be_16(src ? p.sport : p.dport);
  std::memcpy(in, &a, 4);
  std::memcpy(in + 4, &port, 2);
  REQUIRE(r.rss.key_len == key.size());
  REQUIRE(std::memcmp(r.rss.key, key.data(), key.size()) == 0);
  static const rss_model nic(key, {}); // the rule's key: Toeplitz as the NIC computes it
  return r.rss.queue[nic.hash_bytes(in, 6) % r.rss.queue_num];
}

} // namespace

TEST_CASE("VIP-side dnat rule: match the VIP, hash the client's source", "[dnat_flow]") {
  const dnat_endpoint e{v4(192, 0, 2, 10), 81, IPPROTO_TCP, false};
  auto r = build_dnat_rule(e, key, reta_of(4));
  CHECK(r->attr.ingress == 1);
  CHECK(r->items[0].type == RTE_FLOW_ITEM_TYPE_ETH);
  REQUIRE(r->items[1].type == RTE_FLOW_ITEM_TYPE_IPV4);
  CHECK(r->items[1].spec == &r->ip4_spec);
  CHECK(r->ip4_spec.hdr.dst_addr == e.addr.v4_be());
  CHECK(r->ip4_mask.hdr.dst_addr == 0xffffffffu);
  CHECK(r->ip4_mask.hdr.src_addr == 0);
  CHECK(r->ip4_spec.hdr.next_proto_id == IPPROTO_TCP);
  REQUIRE(r->items[2].type == RTE_FLOW_ITEM_TYPE_TCP);
  CHECK(r->tcp_spec.hdr.dst_port == rte_cpu_to_be_16(81));
  CHECK(r->tcp_mask.hdr.dst_port == 0xffff);
  CHECK(r->tcp_mask.hdr.src_port == 0);
  CHECK(r->items[3].type == RTE_FLOW_ITEM_TYPE_END);
  REQUIRE(r->actions[0].type == RTE_FLOW_ACTION_TYPE_RSS);
  CHECK(r->actions[0].conf == &r->rss);
  CHECK(r->actions[1].type == RTE_FLOW_ACTION_TYPE_END);
  CHECK(r->rss.func == RTE_ETH_HASH_FUNCTION_TOEPLITZ);
  CHECK(r->rss.types ==
        (RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_L3_SRC_ONLY | RTE_ETH_RSS_L4_SRC_ONLY));
  CHECK(r->rss.key_len == 40);
  CHECK(std::memcmp(r->rss.key, key.data(), 40) == 0);
  REQUIRE(r->rss.queue_num == 128);
  CHECK(std::vector<uint16_t>(r->rss.queue, r->rss.queue + 128) == reta_of(4));
}

TEST_CASE("backend-side dnat rule: match the backend, hash the client's destination",
          "[dnat_flow]") {
  ip_addr b6;
  b6.bytes = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x21};
  const dnat_endpoint e{b6, 5353, IPPROTO_UDP, true};
  auto r = build_dnat_rule(e, key, reta_of(2));
  REQUIRE(r->items[1].type == RTE_FLOW_ITEM_TYPE_IPV6);
  CHECK(std::memcmp(r->ip6_spec.hdr.src_addr, b6.bytes.data(), 16) == 0);
  CHECK(r->ip6_mask.hdr.src_addr[0] == 0xff);
  CHECK(r->ip6_mask.hdr.src_addr[15] == 0xff);
  CHECK(r->ip6_mask.hdr.dst_addr[0] == 0);
  CHECK(r->ip6_spec.hdr.proto == IPPROTO_UDP);
  REQUIRE(r->items[2].type == RTE_FLOW_ITEM_TYPE_UDP);
  CHECK(r->udp_spec.hdr.src_port == rte_cpu_to_be_16(5353));
  CHECK(r->udp_mask.hdr.src_port == 0xffff);
  CHECK(r->udp_mask.hdr.dst_port == 0);
  CHECK(r->rss.types ==
        (RTE_ETH_RSS_NONFRAG_IPV6_UDP | RTE_ETH_RSS_L3_DST_ONLY | RTE_ETH_RSS_L4_DST_ONLY));
  CHECK(r->rss.queue_num == 128);
}

TEST_CASE("a NIC following the rules delivers both directions to the model's owner",
          "[dnat_flow]") {
  const ip_addr vip = v4(192, 0, 2, 10), backend = v4(10, 0, 0, 21);
  for (uint16_t workers : {2, 3, 4, 8}) {
    const auto reta = reta_of(workers);
    const rss_model model(key, reta);
    auto to_vip = build_dnat_rule({vip, 81, IPPROTO_TCP, false}, key, reta);
    auto from_backend = build_dnat_rule({backend, 8080, IPPROTO_TCP, true}, key, reta);
    std::mt19937 rng(workers);
    std::vector<unsigned> per_queue(workers, 0);
    for (int i = 0; i < 500; ++i) {
      const uint32_t client = rte_cpu_to_be_32(0xc6336400u | (rng() & 0xff)); // 198.51.100.x
      const uint16_t cport = uint16_t(1024 + rng() % 60000);
      const uint16_t owner = model.worker_of(model.hash_endpoint(
          reinterpret_cast<const uint8_t*>(&client), 4, rte_cpu_to_be_16(cport)));
      const packet4 fwd{client, vip.v4_be(), cport, 81, IPPROTO_TCP};
      const packet4 rep{backend.v4_be(), client, 8080, cport, IPPROTO_TCP};
      REQUIRE(nic_matches(*to_vip, fwd));
      REQUIRE(nic_matches(*from_backend, rep));
      CHECK_FALSE(nic_matches(*to_vip, rep));
      CHECK_FALSE(nic_matches(*from_backend, fwd));
      CHECK(nic_queue(*to_vip, fwd) == owner);
      CHECK(nic_queue(*from_backend, rep) == owner);
      ++per_queue[owner];
    }
    for (unsigned n : per_queue)
      CHECK(n > 500 / workers / 2); // every worker owns a fair share
  }
}

TEST_CASE("dnat endpoints of a published slot: dnat services and their backends only",
          "[dnat_flow]") {
  abi::slot_header hdr{};
  abi::service_entry services[3]{};
  abi::backend_entry backends[5]{};
  auto set_service = [&](int i, abi::fwd_mode m, const ip_addr& vip, uint16_t port) {
    std::memcpy(services[i].vip, vip.bytes.data(), 16);
    services[i].port = port;
    services[i].proto = IPPROTO_TCP;
    services[i].family = 4;
    services[i].mode = uint8_t(m);
    services[i].flags = abi::service_in_use;
  };
  set_service(0, abi::fwd_mode::dsr_ipip, v4(192, 0, 2, 10), 80);
  set_service(1, abi::fwd_mode::dnat, v4(192, 0, 2, 10), 81);
  set_service(2, abi::fwd_mode::nat, v4(192, 0, 2, 10), 82);
  auto set_backend = [&](int b, uint16_t svc, const ip_addr& a, uint16_t port, uint32_t flags) {
    std::memcpy(backends[b].addr, a.bytes.data(), 16);
    backends[b].port = port;
    backends[b].service = svc;
    backends[b].family = 4;
    backends[b].flags = flags;
  };
  set_backend(0, 0, v4(10, 0, 0, 11), 0, abi::backend_in_use);
  set_backend(1, 1, v4(10, 0, 0, 21), 8080, abi::backend_in_use);
  set_backend(2, 1, v4(10, 0, 0, 22), 0, abi::backend_retired); // flows still live
  set_backend(3, 1, v4(10, 0, 0, 23), 8080, 0);                 // free slot
  set_backend(4, 2, v4(10, 0, 0, 31), 8080, abi::backend_in_use);
  hdr.service_limit = 3;
  hdr.backend_limit = 5;
  table_view v;
  v.hdr = &hdr;
  v.services = services;
  v.backends = backends;

  const auto got = dnat_endpoints(v, 3, 5);
  const std::vector<dnat_endpoint> want = {
      {v4(10, 0, 0, 21), 8080, IPPROTO_TCP, true},
      {v4(10, 0, 0, 22), 81, IPPROTO_TCP, true}, // port 0: the service's port
      {v4(192, 0, 2, 10), 81, IPPROTO_TCP, false},
  };
  CHECK(got == want);
  // Capacities bound what is read, whatever the header claims.
  CHECK(dnat_endpoints(v, 1, 5).empty());
  CHECK(dnat_endpoints(v, 3, 2) ==
        std::vector<dnat_endpoint>{{v4(10, 0, 0, 21), 8080, IPPROTO_TCP, true},
                                   {v4(192, 0, 2, 10), 81, IPPROTO_TCP, false}});
}

TEST_CASE("the short queue list is offered only where it selects the same queues", "[dnat_flow]") {
  CHECK(short_queue_list(reta_of(4), 4) == std::vector<uint16_t>{0, 1, 2, 3});
  CHECK(short_queue_list(reta_of(2), 2) == std::vector<uint16_t>{0, 1});
  CHECK(short_queue_list(reta_of(3), 3).empty()); // 3 does not divide 128: h % 128 % 3 != h % 3
  auto skewed = reta_of(4);
  skewed[5] = 0; // a RETA the NIC reprogrammed unevenly
  CHECK(short_queue_list(skewed, 4).empty());
  CHECK(short_queue_list({}, 2).empty());
  // Equivalence: the queue each list selects for any hash is the same.
  const auto reta = reta_of(8);
  const auto q = short_queue_list(reta, 8);
  for (uint32_t h = 0; h < 100000; h += 7)
    REQUIRE(reta[h % reta.size()] == q[h % q.size()]);
}

TEST_CASE("steering mode names for telemetry", "[dnat_flow]") {
  CHECK(std::string(dnat_steering_name(dnat_steering_mode::none)) == "none");
  CHECK(std::string(dnat_steering_name(dnat_steering_mode::rte_flow)) == "rte_flow");
  CHECK(std::string(dnat_steering_name(dnat_steering_mode::handoff)) == "handoff");
  dnat_flow_steering none;
  CHECK(none.describe() == "none");
  CHECK(none.sync({}) == true); // nothing to install outside rte_flow mode
  CHECK(none.installed() == 0);
}
