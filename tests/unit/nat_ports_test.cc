// nat_ports: per-endpoint full-NAT port sets, FIFO reuse, RSS ownership of the
// reply tuple, closing-flow eviction candidates, recycling on publication.
#include <catch2/catch_test_macros.hpp>
#include <set>

#include <rte_byteorder.h>
#include <rte_thash.h>

#include "nat_ports.h"

using namespace sluice;
using namespace sluice::dp;

namespace {

ip_addr addr(const char* s) {
  return *parse_ip(s);
}

const std::array<uint8_t, 40> ms_key = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
                                        0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
                                        0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
                                        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

nat_ports_params params(uint16_t worker, uint16_t workers, uint16_t lo, uint16_t hi,
                        std::vector<ip_addr> pool = {addr("192.0.2.200")}) {
  nat_ports_params p;
  p.worker_id = worker;
  p.n_workers = workers;
  p.port_min = lo;
  p.port_max = hi;
  p.pool = std::move(pool);
  p.rss_key = ms_key;
  for (uint16_t i = 0; i < 128; ++i)
    p.reta.push_back(uint16_t(i % workers));
  p.max_backend_slots = 64;
  return p;
}

uint16_t host(uint16_t be) {
  return rte_be_to_cpu_16(be);
}

// Direct Toeplitz of the IPv4 reply tuple, the way a NIC would compute it.
uint16_t nic_queue(const ip_addr& backend, uint16_t bport, const ip_addr& pool, uint16_t port,
                   uint16_t workers) {
  uint32_t w[3];
  uint32_t a, b;
  std::memcpy(&a, backend.v4_ptr(), 4);
  std::memcpy(&b, pool.v4_ptr(), 4);
  w[0] = rte_be_to_cpu_32(a);
  w[1] = rte_be_to_cpu_32(b);
  w[2] = uint32_t(bport) << 16 | port;
  uint32_t h = rte_softrss(w, 3, ms_key.data());
  return uint16_t((h % 128) % workers);
}

} // namespace

TEST_CASE("one worker: every port, ascending first, then first freed first") {
  nat_ports np;
  REQUIRE(np.init(params(0, 1, 1000, 1009)).ok());
  np.begin_publication();
  REQUIRE(np.bind(3, addr("10.0.0.1"), 80).ok());
  np.end_publication();
  REQUIRE(np.slot_sets(3) == 1);
  uint16_t set = np.slot_set(3, 0);
  CHECK(np.owned(set) == 10);
  std::vector<nat_lease> l(10);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(np.acquire(3, 0, l[i]));
    CHECK(host(l[i].port_be) == 1000 + i);
  }
  nat_lease x;
  CHECK_FALSE(np.acquire(3, 0, x));
  np.release(l[7]);
  np.release(l[2]);
  np.release(l[5]);
  REQUIRE(np.acquire(3, 0, x));
  CHECK(host(x.port_be) == 1007);
  REQUIRE(np.acquire(3, 0, x));
  CHECK(host(x.port_be) == 1002);
  np.release(x);
  REQUIRE(np.acquire(3, 0, x));
  CHECK(host(x.port_be) == 1005); // 1002 went back behind 1005
  CHECK(np.bad_releases() == 0);
}

TEST_CASE("FIFO: a released port is reused only after every other free port") {
  nat_ports np;
  REQUIRE(np.init(params(0, 1, 2000, 2999)).ok());
  np.begin_publication();
  REQUIRE(np.bind(0, addr("10.0.0.1"), 80).ok());
  np.end_publication();
  nat_lease first;
  REQUIRE(np.acquire(0, 0, first));
  np.release(first);
  // 999 other ports come before it again.
  for (int i = 0; i < 999; ++i) {
    nat_lease l;
    REQUIRE(np.acquire(0, 0, l));
    CHECK(l.port_be != first.port_be);
    np.release(l);
  }
  nat_lease l;
  REQUIRE(np.acquire(0, 0, l));
  CHECK(l.port_be == first.port_be);
}

TEST_CASE("the same local port serves several backends at once") {
  nat_ports np;
  REQUIRE(np.init(params(0, 1, 5000, 5000)).ok());
  np.begin_publication();
  REQUIRE(np.bind(0, addr("10.0.0.1"), 80).ok());
  REQUIRE(np.bind(1, addr("10.0.0.2"), 80).ok());
  REQUIRE(np.bind(2, addr("10.0.0.1"), 8080).ok());
  REQUIRE(np.bind(3, addr("10.0.0.1"), 80).ok()); // same endpoint, other service: shared
  np.end_publication();
  nat_lease a, b, c, d;
  REQUIRE(np.acquire(0, 0, a));
  REQUIRE(np.acquire(1, 0, b));
  REQUIRE(np.acquire(2, 0, c));
  CHECK(host(a.port_be) == 5000);
  CHECK(host(b.port_be) == 5000);
  CHECK(host(c.port_be) == 5000);
  CHECK(a.set != b.set);
  CHECK(a.set != c.set);
  // Slot 3 is the same endpoint as slot 0: its only port is taken.
  CHECK_FALSE(np.acquire(3, 0, d));
  CHECK(np.sets_in_use() == 3);
}

TEST_CASE("several pool addresses: one set each, hash picks the first tried") {
  nat_ports np;
  REQUIRE(np.init(params(0, 1, 100, 101,
                         {addr("192.0.2.200"), addr("2001:db8::200"), addr("192.0.2.201")}))
              .ok());
  np.begin_publication();
  REQUIRE(np.bind(0, addr("10.0.0.1"), 80).ok());
  REQUIRE(np.bind(1, addr("2001:db8:1::1"), 80).ok());
  np.end_publication();
  CHECK(np.slot_sets(0) == 2);
  CHECK(np.slot_sets(1) == 1);
  std::set<ip_addr> used;
  for (int i = 0; i < 4; ++i) {
    nat_lease l;
    REQUIRE(np.acquire(0, uint32_t(i), l));
    used.insert(np.set_addr(l.set));
    CHECK(np.set_addr(l.set).is_v4());
  }
  CHECK(used.size() == 2);
  nat_lease l;
  CHECK_FALSE(np.acquire(0, 0, l)); // 2 addresses x 2 ports
  REQUIRE(np.acquire(1, 0, l));
  CHECK(np.set_addr(l.set) == addr("2001:db8::200"));
}

TEST_CASE("several workers: disjoint shares, and the reply's RSS lands on the owner") {
  const uint16_t workers = 4;
  const ip_addr pool = addr("192.0.2.200");
  const ip_addr backends[] = {addr("10.0.0.1"), addr("10.0.0.2"), addr("198.51.100.7")};
  std::vector<nat_ports> np(workers);
  for (uint16_t w = 0; w < workers; ++w) {
    REQUIRE(np[w].init(params(w, workers, 1024, 65535)).ok());
    np[w].begin_publication();
    for (uint32_t b = 0; b < 3; ++b)
      REQUIRE(np[w].bind(b, backends[b], uint16_t(80 + b)).ok());
    np[w].end_publication();
  }
  for (uint32_t b = 0; b < 3; ++b) {
    uint32_t total = 0;
    for (uint16_t w = 0; w < workers; ++w) {
      uint16_t set = np[w].slot_set(b, 0);
      total += np[w].owned(set);
      // Roughly a quarter each: Toeplitz spreads ports evenly.
      CHECK(np[w].owned(set) > 64512 / workers * 8 / 10);
      // Every port handed out hashes to this worker, computed independently.
      for (int i = 0; i < 2000; ++i) {
        nat_lease l;
        REQUIRE(np[w].acquire(b, 0, l));
        CHECK(nic_queue(backends[b], uint16_t(80 + b), pool, host(l.port_be), workers) == w);
        CHECK(np[w].reply_owner(backends[b], rte_cpu_to_be_16(uint16_t(80 + b)), pool, l.port_be) ==
              w);
      }
    }
    CHECK(total == 64512); // disjoint and complete
  }
}

TEST_CASE("exhausted: the oldest closing flow still holding a port is the candidate") {
  nat_ports np;
  REQUIRE(np.init(params(0, 1, 100, 103)).ok());
  np.begin_publication();
  REQUIRE(np.bind(0, addr("10.0.0.1"), 80).ok());
  np.end_publication();
  nat_lease l[4];
  for (auto& x : l)
    REQUIRE(np.acquire(0, 0, x));
  // Flows at positions 10..13 hold them; 12 then 10 then 11 start closing.
  np.note_closing(l[2].set, 12);
  np.note_closing(l[0].set, 10);
  np.note_closing(l[1].set, 11);
  std::set<uint32_t> gone = {12}; // flow 12 already ended by itself
  auto still = [&](uint32_t pos, uint16_t) { return !gone.count(pos); };
  CHECK(np.evict_candidate(0, still) == 10);
  CHECK(np.evict_candidate(0, still) == 11);
  CHECK(np.evict_candidate(0, still) == -1);
}

TEST_CASE("closing queue keeps the newest entries when full") {
  nat_ports np;
  REQUIRE(np.init(params(0, 1, 1, 2)).ok());
  np.begin_publication();
  REQUIRE(np.bind(0, addr("10.0.0.1"), 80).ok());
  np.end_publication();
  uint16_t set = np.slot_set(0, 0);
  for (uint32_t pos = 0; pos < 5; ++pos)
    np.note_closing(set, pos);
  auto any = [](uint32_t, uint16_t) { return true; };
  CHECK(np.evict_candidate(0, any) == 3); // capacity 2 (owned ports): 3 and 4 kept
  CHECK(np.evict_candidate(0, any) == 4);
}

TEST_CASE("double release is ignored and counted") {
  nat_ports np;
  REQUIRE(np.init(params(0, 1, 10, 12)).ok());
  np.begin_publication();
  REQUIRE(np.bind(0, addr("10.0.0.1"), 80).ok());
  np.end_publication();
  nat_lease l;
  REQUIRE(np.acquire(0, 0, l));
  np.release(l);
  np.release(l);
  CHECK(np.bad_releases() == 1);
  CHECK(np.free_ports(l.set) == 3);
  np.release(nat_lease{999, 0});
  CHECK(np.bad_releases() == 2);
}

TEST_CASE("publication: unnamed endpoints are recycled once their ports are back") {
  nat_ports np;
  REQUIRE(np.init(params(0, 1, 10, 19)).ok());
  np.begin_publication();
  REQUIRE(np.bind(0, addr("10.0.0.1"), 80).ok());
  REQUIRE(np.bind(1, addr("10.0.0.2"), 80).ok());
  np.end_publication();
  nat_lease held;
  REQUIRE(np.acquire(0, 0, held));
  // Slot 0 now names another backend; the old endpoint still lends a port.
  np.begin_publication();
  REQUIRE(np.bind(0, addr("10.0.0.3"), 80).ok());
  np.end_publication();
  CHECK(np.sets_in_use() == 2); // 10.0.0.1 (leased) and 10.0.0.3; 10.0.0.2 recycled
  np.release(held);
  np.begin_publication();
  REQUIRE(np.bind(0, addr("10.0.0.3"), 80).ok());
  np.end_publication();
  CHECK(np.sets_in_use() == 1);
  CHECK(np.bad_releases() == 0);
  // A backend of a family without pool address gets no set.
  np.begin_publication();
  REQUIRE(np.bind(5, addr("2001:db8::5"), 80).ok());
  np.end_publication();
  CHECK(np.slot_sets(5) == 0);
  nat_lease l;
  CHECK_FALSE(np.acquire(5, 0, l));
}

TEST_CASE("bad parameters are refused with a message") {
  nat_ports np;
  auto p = params(0, 2, 2000, 1000);
  CHECK_FALSE(np.init(p).ok());
  p = params(0, 2, 1000, 2000);
  p.reta = {0, 1, 2};
  auto r = np.init(p);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error_message().find("RETA") != std::string::npos);
}
