#include <catch2/catch_test_macros.hpp>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>

#include "flow_hash.h"
#include "maglev.h"
#include "table_builder.h"
#include "temp_shm.h"

using namespace sluice;
using sluice::test::contains;

namespace {

constexpr abi::capacities caps{16, 64, 8192, 4};

ip_addr ip(const char* s) {
  auto a = parse_ip(s);
  REQUIRE(a);
  return *a;
}

service_config svc(const char* vip, uint16_t port, std::vector<const char*> backends,
                   uint8_t proto = 6) {
  service_config s;
  s.vip = ip(vip);
  s.port = port;
  s.proto = proto;
  s.maglev_size = 251;
  for (const char* b : backends)
    s.backends.push_back(backend_config{ip(b), 8080, 1, abi::backend_state::up});
  return s;
}

// A slot in a heap buffer (64-byte aligned), laid out like a shared-memory slot.
struct test_slot {
  abi::layout l = abi::compute_layout(caps);
  std::unique_ptr<uint8_t, decltype(&std::free)> mem{
      static_cast<uint8_t*>(std::aligned_alloc(4096, abi::compute_layout(caps).slot_size)),
      &std::free};
  test_slot() { std::memset(mem.get(), 0xa5, l.slot_size); } // garbage everywhere
  slot_target target() { return make_slot_target(mem.get(), l, caps); }
  table_view view() { return make_slot_view(mem.get(), l); }
};

std::string build_error(table_builder& b, const std::vector<service_config>& cfg) {
  test_slot s;
  auto r = b.build(cfg, s.target(), 1);
  REQUIRE_FALSE(r.ok());
  CHECK(b.validate(cfg).error_message() == r.error_message());
  return r.error_message();
}

} // namespace

TEST_CASE("build fills a valid slot that find_service resolves", "[table_builder]") {
  table_builder b(caps);
  test_slot s;
  std::vector<service_config> cfg = {
      svc("10.0.0.1", 80, {"10.1.0.1", "10.1.0.2", "10.1.0.3"}),
      svc("10.0.0.1", 443, {"10.1.0.1"}),
      svc("10.0.0.1", 53, {"10.1.0.9"}, 17),
      svc("2001:db8::1", 80, {"2001:db8:1::1", "2001:db8:1::2"}),
  };
  cfg[1].mode = abi::fwd_mode::dnat;
  cfg[2].mode = abi::fwd_mode::dsr_ipip;
  cfg[2].backends[0].port = 0;
  cfg[3].backends[1].weight = 0; // drained: in the slot, not in the lookup table
  REQUIRE(b.build(cfg, s.target(), 7).ok());
  const table_view v = s.view();
  REQUIRE(validate_slot(v, caps).ok());
  CHECK(v.hdr->generation == 7);
  CHECK(v.hdr->service_limit == 4);
  CHECK(v.hdr->backend_limit == 7);
  CHECK(v.hdr->lookup_used == 4 * 251);
  CHECK(v.hdr->flags == (abi::slot_has_nat | abi::slot_has_dnat));
  CHECK(v.hdr->published_ns > 0);

  for (const service_config& c : cfg) {
    const auto idx = b.service_index(key_of(c));
    REQUIRE(idx);
    CHECK(v.find_service(c.vip.bytes.data(), c.port, c.proto) == int32_t(*idx));
    const abi::service_entry& e = v.services[*idx];
    CHECK(e.flags == abi::service_in_use);
    CHECK(e.port == c.port);
    CHECK(e.proto == c.proto);
    CHECK(e.mode == uint8_t(c.mode));
    CHECK(e.family == (c.vip.is_v4() ? 4 : 6));
    CHECK(e.timeout_est_s == 900);
    CHECK(e.lookup_size == 251);
    CHECK(e.backend_count == c.backends.size());
    for (const backend_config& bc : c.backends) {
      const auto a = b.backend(key_of(c, bc));
      REQUIRE(a);
      const abi::backend_entry& be = v.backends[a->slot];
      CHECK(be.flags == abi::backend_in_use);
      CHECK(be.service == *idx);
      CHECK(be.incarnation == a->incarnation);
      CHECK(be.incarnation != 0);
      CHECK(be.port == bc.port);
      CHECK(be.weight == bc.weight);
      CHECK(std::memcmp(be.addr, bc.addr.bytes.data(), 16) == 0);
      // Only up backends with weight > 0 appear in the lookup table.
      uint32_t hits = 0;
      for (uint32_t j = 0; j < e.lookup_size; ++j)
        hits += v.lookup[e.lookup_offset + j] == a->slot;
      if (bc.weight == 0)
        CHECK(hits == 0);
      else
        CHECK(hits > 0);
    }
  }
  // Misses: other port, other protocol, other address, other family.
  CHECK(v.find_service(ip("10.0.0.1").bytes.data(), 81, 6) == -1);
  CHECK(v.find_service(ip("10.0.0.1").bytes.data(), 80, 17) == -1);
  CHECK(v.find_service(ip("10.0.0.2").bytes.data(), 80, 6) == -1);
  CHECK(v.find_service(ip("::ffff:10.0.0.2").bytes.data(), 80, 6) == -1);
  CHECK(v.find_service(ip("2001:db8::2").bytes.data(), 80, 6) == -1);
  // Unused entries are zero, whatever the buffer held before.
  abi::service_entry zero_s{};
  abi::backend_entry zero_b{};
  for (uint32_t i = 4; i < caps.max_services; ++i)
    CHECK(std::memcmp(&v.services[i], &zero_s, sizeof(zero_s)) == 0);
  for (uint32_t i = 7; i < caps.max_backends; ++i)
    CHECK(std::memcmp(&v.backends[i], &zero_b, sizeof(zero_b)) == 0);
}

TEST_CASE("the lookup table is the Maglev table of the up backends", "[table_builder]") {
  table_builder b(caps);
  test_slot s;
  auto c = svc("10.0.0.1", 80, {"10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"});
  c.backends[1].state = abi::backend_state::down;
  c.backends[2].weight = 3;
  c.backends[3].port = 0; // = service port 80
  REQUIRE(b.build({c}, s.target(), 1).ok());
  std::vector<maglev_backend> mb;
  for (size_t i : {0u, 2u, 3u}) {
    const backend_config& bc = c.backends[i];
    mb.push_back({maglev_identity(bc.addr, bc.port ? bc.port : c.port), bc.weight,
                  b.backend(key_of(c, bc))->slot});
  }
  const auto expected = maglev_table(mb, 251);
  const table_view v = s.view();
  const abi::service_entry& e = v.services[*b.service_index(key_of(c))];
  REQUIRE(e.lookup_size == 251);
  CHECK(std::vector<uint32_t>(v.lookup + e.lookup_offset, v.lookup + e.lookup_offset + 251) ==
        expected);
  // pick_backend reads the same table.
  // pick_backend maps the flow hash onto the table by multiply-shift of its
  // low 32 bits.
  for (uint64_t i = 0; i < 1000; ++i) {
    uint64_t h = mix64(i);
    CHECK(uint32_t(v.pick_backend(e, h)) == expected[(uint64_t(uint32_t(h)) * 251) >> 32]);
  }

  // No backend accepts new flows: lookup_size 0, pick_backend -1.
  for (auto& bc : c.backends)
    bc.state = abi::backend_state::down;
  REQUIRE(b.build({c}, s.target(), 2).ok());
  const abi::service_entry& e2 = s.view().services[*b.service_index(key_of(c))];
  CHECK(e2.lookup_size == 0);
  CHECK(s.view().pick_backend(e2, 12345) == -1);
  CHECK(s.view().hdr->lookup_used == 0);
}

TEST_CASE("indices and incarnations are stable; reused slots get new incarnations",
          "[table_builder]") {
  table_builder b(caps);
  test_slot s;
  auto web = svc("10.0.0.1", 80, {"10.1.0.1", "10.1.0.2"});
  auto dns = svc("10.0.0.2", 53, {"10.2.0.1"}, 17);
  dns.backends[0].port = 0;
  REQUIRE(b.build({web, dns}, s.target(), 1).ok());
  const auto web_i = *b.service_index(key_of(web));
  const auto dns_i = *b.service_index(key_of(dns));
  const auto a1 = *b.backend(key_of(web, web.backends[0]));
  const auto a2 = *b.backend(key_of(web, web.backends[1]));
  const auto d1 = *b.backend(key_of(dns, dns.backends[0]));

  // Reordered config, a weight change and a state change: nothing moves.
  web.backends[1].weight = 5;
  web.backends[0].state = abi::backend_state::draining;
  std::swap(web.backends[0], web.backends[1]);
  REQUIRE(b.build({dns, web}, s.target(), 2).ok());
  CHECK(*b.service_index(key_of(web)) == web_i);
  CHECK(*b.service_index(key_of(dns)) == dns_i);
  CHECK(b.backend(key_of(web, web.backends[1]))->slot == a1.slot);
  CHECK(b.backend(key_of(web, web.backends[1]))->incarnation == a1.incarnation);
  CHECK(b.backend(key_of(web, web.backends[0]))->slot == a2.slot);
  CHECK(b.backend(key_of(dns, dns.backends[0]))->incarnation == d1.incarnation);

  // Port 0 and the explicit service port are the same backend.
  dns.backends[0].port = 53;
  REQUIRE(b.build({web, dns}, s.target(), 3).ok());
  CHECK(b.backend(key_of(dns, dns.backends[0]))->slot == d1.slot);
  CHECK(b.backend(key_of(dns, dns.backends[0]))->incarnation == d1.incarnation);

  // Remove a backend: its slot is freed, not reused at once, and a new backend
  // gets a fresh slot and a new incarnation.
  auto removed = web.backends[1];
  web.backends.pop_back();
  REQUIRE(b.build({web, dns}, s.target(), 4).ok());
  CHECK_FALSE(b.backend(key_of(web, removed)));
  // The freed slot is published as retired: no longer in use, but its address
  // and incarnation stay so the dataplane keeps the removed backend's flows.
  CHECK(s.view().backends[a1.slot].flags == abi::backend_retired);
  CHECK(s.view().backends[a1.slot].incarnation == a1.incarnation);
  CHECK(s.view().backends[a1.slot].weight == 0);
  web.backends.push_back(backend_config{ip("10.1.0.3"), 8080, 1, abi::backend_state::up});
  REQUIRE(b.build({web, dns}, s.target(), 5).ok());
  const auto a3 = *b.backend(key_of(web, web.backends.back()));
  CHECK(a3.slot != a1.slot);
  CHECK(a3.incarnation > d1.incarnation);

  // Re-adding the removed backend: a new assignment, a new incarnation.
  web.backends.push_back(removed);
  REQUIRE(b.build({web, dns}, s.target(), 6).ok());
  const auto back = *b.backend(key_of(web, removed));
  CHECK(back.incarnation != a1.incarnation);
  CHECK(back.incarnation > a3.incarnation);

  // Once never-used slots run out, freed ones are reused (oldest first), each
  // with a new incarnation.
  table_builder small(abi::capacities{4, 3, 1024, 1});
  abi::layout l = abi::compute_layout({4, 3, 1024, 1});
  std::vector<uint8_t> buf(l.slot_size + 64);
  auto* base = reinterpret_cast<uint8_t*>((uintptr_t(buf.data()) + 63) & ~uintptr_t(63));
  auto t = make_slot_target(base, l, {4, 3, 1024, 1});
  std::set<uint32_t> incarnations;
  for (int round = 0; round < 10; ++round) {
    auto c = svc("10.0.0.1", 80, {});
    for (int i = 0; i < 3; ++i)
      c.backends.push_back(
          backend_config{ip(("10.9." + std::to_string(round) + "." + std::to_string(i)).c_str()),
                         80, 1, abi::backend_state::up});
    REQUIRE(small.build({c}, t, uint64_t(round + 1)).ok());
    REQUIRE(validate_slot(make_slot_view(base, l), {4, 3, 1024, 1}).ok());
    for (auto& bc : c.backends) {
      auto a = small.backend(key_of(c, bc));
      REQUIRE(a);
      CHECK(a->slot < 3);
      CHECK(incarnations.insert(a->incarnation).second); // never repeats
    }
  }
}

TEST_CASE("validation errors are precise and change nothing", "[table_builder]") {
  table_builder b(caps);
  test_slot good_slot;
  auto web = svc("10.0.0.1", 80, {"10.1.0.1"});
  REQUIRE(b.build({web}, good_slot.target(), 1).ok());
  const auto before_inc = b.next_incarnation();
  const auto web_i = *b.service_index(key_of(web));

  auto with = [&](auto mutate) {
    auto extra = svc("10.0.0.2", 8080, {"10.1.0.5"});
    mutate(extra);
    return build_error(b, {web, extra});
  };
  CHECK(contains(with([](service_config& s) { s.vip = ip("10.0.0.1"), s.port = 80; }),
                 "service 10.0.0.1:80/tcp: duplicate service"));
  CHECK(contains(with([](service_config& s) { s.vip = ip("0.0.0.0"); }), "VIP is unspecified"));
  CHECK(contains(with([](service_config& s) { s.proto = 1; }),
                 "protocol 1 is neither TCP (6) nor UDP (17)"));
  CHECK(contains(with([](service_config& s) { s.port = 0; }), "port 0"));
  CHECK(contains(with([](service_config& s) { s.maglev_size = 65536; }),
                 "Maglev table size 65536 is not prime"));
  CHECK(contains(with([](service_config& s) {
                   s.maglev_size = 3;
                   for (int i = 2; i < 6; ++i)
                     s.backends.push_back({ip(("10.1.0." + std::to_string(i)).c_str()), 1, 1,
                                           abi::backend_state::up});
                 }),
                 "5 backends need a Maglev table size of at least 5 (got 3"));
  CHECK(contains(with([](service_config& s) { s.backends[0].addr = ip("2001:db8::5"); }),
                 "backend [2001:db8::5]:8080: nat needs a backend of the VIP's family (IPv4), "
                 "got IPv6"));
  CHECK(contains(with([](service_config& s) {
                   s.vip = ip("2001:db8::1");
                   s.mode = abi::fwd_mode::dsr_ipip;
                   s.backends[0].port = 0;
                 }),
                 "dsr-ipip cannot carry an IPv6 VIP to an IPv4 backend"));
  CHECK(contains(with([](service_config& s) {
                   s.mode = abi::fwd_mode::dsr_l2;
                   s.port = 8443;
                 }),
                 "backend 10.1.0.5:8080: dsr-l2 cannot rewrite the port: backend port must be 0 "
                 "or 8443"));
  CHECK(contains(with([](service_config& s) { s.backends.push_back(s.backends[0]); }),
                 "backend 10.1.0.5:8080: duplicate backend"));
  CHECK(contains(with([](service_config& s) { s.backends[0].addr = ip("::"); }),
                 "address is unspecified"));
  CHECK(contains(with([](service_config& s) { s.timeouts.fin_s = 0; }), "timeouts must be > 0"));
  CHECK(contains(with([](service_config& s) {
                   s.mode = abi::fwd_mode::dsr_gue;
                   s.gue_port = 0;
                 }),
                 "dsr-gue needs a GUE port"));
  CHECK(contains(with([](service_config& s) { s.maglev_size = 8191; }),
                 "Maglev tables need 8442 lookup entries in total, capacity 8192"));
  CHECK(contains(with([](service_config& s) {
                   for (int i = 0; i < 64; ++i)
                     s.backends.push_back({ip(("10.3.0." + std::to_string(i)).c_str()), 8080, 1,
                                           abi::backend_state::up});
                 }),
                 "too many backends: 66 configured, capacity 64"));
  {
    std::vector<service_config> many;
    for (int i = 0; i < 17; ++i)
      many.push_back(svc("10.0.0.1", uint16_t(1000 + i), {}));
    CHECK(contains(build_error(b, many), "too many services: 17 configured, capacity 16"));
  }
  // 4in6 is fine for dsr-ipip, and so is a dsr backend on port 0.
  auto four_in_six = svc("10.0.0.3", 80, {"2001:db8::7"});
  four_in_six.mode = abi::fwd_mode::dsr_ipip;
  four_in_six.backends[0].port = 0;
  CHECK(b.validate({web, four_in_six}).ok());

  // Nothing changed: same assignments, same incarnation counter, old slot intact.
  CHECK(b.next_incarnation() == before_inc);
  CHECK(*b.service_index(key_of(web)) == web_i);
  CHECK_FALSE(b.service_index(service_key{ip("10.0.0.2"), 8080, 6}));
  CHECK(validate_slot(good_slot.view(), caps).ok());
  CHECK(good_slot.view().hdr->generation == 1);
}

TEST_CASE("validate_slot catches broken slots", "[table_builder]") {
  table_builder b(caps);
  test_slot s;
  auto web = svc("10.0.0.1", 80, {"10.1.0.1", "10.1.0.2"});
  REQUIRE(b.build({web, svc("10.0.0.2", 80, {"10.1.0.3"})}, s.target(), 1).ok());
  REQUIRE(validate_slot(s.view(), caps).ok());
  slot_target t = s.target();
  const uint32_t wi = *b.service_index(key_of(web));

  SECTION("lookup entry out of range") {
    t.lookup[t.services[wi].lookup_offset + 5] = 63;
    CHECK(contains(validate_slot(s.view(), caps).error_message(),
                   "lookup entry 5 points at backend slot 63"));
  }
  SECTION("lookup entry pointing at another service's backend") {
    const uint32_t other =
        b.backend(key_of(svc("10.0.0.2", 80, {}), backend_config{ip("10.1.0.3"), 8080}))->slot;
    t.lookup[t.services[wi].lookup_offset] = other;
    CHECK(contains(validate_slot(s.view(), caps).error_message(), "not an in-use backend of it"));
  }
  SECTION("backend of a service not in use") {
    t.backends[0].service = 9;
    CHECK_FALSE(validate_slot(s.view(), caps).ok());
  }
  SECTION("limits beyond capacity") {
    t.hdr->backend_limit = 65;
    CHECK(contains(validate_slot(s.view(), caps).error_message(), "backend_limit 65 exceeds"));
  }
  SECTION("VIP index entry with a wrong key") {
    for (uint32_t i = 0; i < t.vip_index_capacity; ++i)
      if (t.vip_index[i].service_plus1 != 0)
        t.vip_index[i].port = 81;
    CHECK(contains(validate_slot(s.view(), caps).error_message(), "VIP index entry"));
  }
  SECTION("incarnation 0") {
    t.backends[1].incarnation = 0;
    CHECK(contains(validate_slot(s.view(), caps).error_message(), "incarnation 0"));
  }
}

TEST_CASE("adopt takes over a published slot", "[table_builder]") {
  table_builder b(caps);
  test_slot s;
  auto web = svc("10.0.0.1", 80, {"10.1.0.1", "10.1.0.2"});
  web.backends[1].port = 0;
  auto dns = svc("10.0.0.2", 53, {"10.2.0.1"}, 17);
  REQUIRE(b.build({dns, web}, s.target(), 1).ok());
  REQUIRE(b.build({web}, s.target(), 2).ok()); // dns freed: a hole at its index

  table_builder restarted(caps);
  REQUIRE(restarted.adopt(s.view()).ok());
  CHECK(restarted.service_index(key_of(web)) == b.service_index(key_of(web)));
  for (auto& bc : web.backends) {
    CHECK(restarted.backend(key_of(web, bc))->slot == b.backend(key_of(web, bc))->slot);
    CHECK(restarted.backend(key_of(web, bc))->incarnation ==
          b.backend(key_of(web, bc))->incarnation);
  }
  CHECK(restarted.next_incarnation() > b.backend(key_of(web, web.backends[0]))->incarnation);
  // Building the same config again keeps everything.
  test_slot s2;
  REQUIRE(restarted.build({web}, s2.target(), 3).ok());
  CHECK(restarted.backend(key_of(web, web.backends[1]))->incarnation ==
        b.backend(key_of(web, web.backends[1]))->incarnation);

  // A broken slot is refused and the builder stays as it was.
  s.target().backends[b.backend(key_of(web, web.backends[0]))->slot].incarnation = 0;
  table_builder other(caps);
  CHECK_FALSE(other.adopt(s.view()).ok());
  CHECK(other.next_incarnation() == 1);
}
