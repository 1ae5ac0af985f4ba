// peer_sync and table_digest: identical configs give identical digests even
// when the backend slots differ; a changed weight changes the digest; peer
// messages round-trip, gaps count as lost; two peer_sync instances on
// loopback see each other up, then down when one goes silent.
#include <catch2/catch_test_macros.hpp>
#include <thread>

#include "config_load.h"
#include "peer_sync.h"
#include "publisher.h"
#include "shm_atomic.h"
#include "stats_reader.h"
#include "table_digest.h"
#include "temp_shm.h"

using namespace sluice;
using namespace sluice::cp;

namespace {

const abi::capacities caps{64, 1024, 1u << 20, 4};

cp_config load(const std::string& yaml) {
  auto c = load_config_text(yaml, "t.yaml", caps);
  INFO((c ? std::string() : c.error_message()));
  REQUIRE(c.ok());
  return c.value();
}

const char* config = R"(services:
  - name: web
    vip: 192.0.2.10
    port: 80
    mode: dsr-ipip
    backends:
      - {address: 10.0.0.11}
      - {address: 10.0.0.12, weight: 2}
      - {address: 10.0.0.13}
)";

struct instance {
  sluice::test::temp_shm_path path;
  shm_region region;
  std::unique_ptr<publisher> pub;
  explicit instance(const char* tag) : path(tag) {
    auto r = shm_region::create_or_attach(path.path, caps);
    REQUIRE(r.ok());
    region = std::move(*r);
    pub = std::make_unique<publisher>(region);
  }
  uint64_t digest(const cp_config& c, const std::string& service = "web") {
    REQUIRE(pub->publish(c.table_input(), std::chrono::milliseconds(100)).ok());
    return service_digests(region, pub->builder(), c).at(service);
  }
};

peer_options opts(std::string listen, std::vector<std::string> peers, uint32_t interval_ms = 200,
                  uint32_t dead_ms = 1000) {
  peer_options o;
  o.listen = std::move(listen);
  o.peers = std::move(peers);
  o.interval_ms = interval_ms;
  o.dead_ms = dead_ms;
  return o;
}

} // namespace

TEST_CASE("same config => same digest, whatever the slot history", "[peers]") {
  auto c = load(config);
  instance a("dga"), b("dgb");
  // b first publishes another service, so its backend slots differ from a's.
  auto other = load("services:\n  - {name: x, vip: 192.0.2.99, port: 1, backends: "
                    "[{address: 10.9.9.9}, {address: 10.9.9.8}]}\n");
  b.digest(other, "x");
  const uint64_t da = a.digest(c), db = b.digest(c);
  CHECK(da != 0);
  CHECK(da == db);
  auto heavier = c;
  heavier.services[0].cfg.backends[0].weight = 3;
  CHECK(a.digest(heavier) != da);
  CHECK(a.digest(c) == da); // and back
  auto none = c;
  none.services[0].cfg.backends.clear();
  const uint64_t empty = a.digest(none);
  CHECK(empty != da);
  CHECK(b.digest(none) == empty);
}

TEST_CASE("peer messages: round trip, lost messages, restarts, garbage", "[peers]") {
  peer_local me{"lb1", true, {{"web", 0x1234}, {"dns", 0xffffffffffffffffull}}};
  peer_view v;
  v.address = "127.0.0.1:1";
  REQUIRE(apply_peer_message(encode_peer_message(me, 1), 10, v).ok());
  CHECK(v.instance == "lb1");
  CHECK(v.serving);
  CHECK(v.digests == me.digests);
  CHECK(v.state == "up");
  REQUIRE(apply_peer_message(encode_peer_message(me, 5), 20, v).ok());
  CHECK(v.lost == 3);
  REQUIRE(apply_peer_message(encode_peer_message(me, 1), 30, v).ok()); // peer restarted
  CHECK(v.lost == 3);
  CHECK(v.messages == 3);
  CHECK_FALSE(apply_peer_message("{\"sluice_peer\": 2}", 40, v).ok());
  CHECK_FALSE(apply_peer_message("nonsense", 40, v).ok());
  CHECK_FALSE(apply_peer_message(R"({"sluice_peer":1,"instance":"x","seq":9,"serving":true,)"
                                 R"("digests":{"web":"zz"}})",
                                 40, v)
                  .ok());
  CHECK(v.messages == 3);

  auto c = compare_digests({{"web", 1}, {"dns", 2}, {"a", 3}}, {{"web", 1}, {"dns", 5}, {"b", 4}});
  CHECK(c.equal == std::vector<std::string>{"web"});
  CHECK(c.differ == std::vector<std::string>{"dns"});
  CHECK(c.only_local == std::vector<std::string>{"a"});
  CHECK(c.only_peer == std::vector<std::string>{"b"});
  CHECK_FALSE(c.all_equal());
}

TEST_CASE("two instances on loopback: up, digests compared, then down", "[peers]") {
  const int port_a = 20000 + ::getpid() % 20000, port_b = port_a + 1;
  auto addr = [](int p) { return "127.0.0.1:" + std::to_string(p); };
  peer_sync a(opts(addr(port_a), {addr(port_b)}, 10, 100));
  peer_sync b(opts(addr(port_b), {addr(port_a)}, 10, 100));
  REQUIRE(a.start().ok());
  REQUIRE(b.start().ok());
  peer_local la{"lb1", true, {{"web", 7}}}, lb{"lb2", false, {{"web", 7}}};
  int64_t now = int64_t(monotonic_ns());
  for (int i = 0; i < 20 && (a.peers()[0].messages < 2 || b.peers()[0].messages < 2); ++i) {
    a.tick(now, la);
    b.tick(now, lb);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    now += 20'000'000;
  }
  CHECK(a.peers()[0].state == "up");
  CHECK(a.peers()[0].instance == "lb2");
  CHECK_FALSE(a.peers()[0].serving);
  auto s = a.status({{"web", 7}}, now);
  CHECK(s["peers"][0]["digests_equal"] == true);
  s = a.status({{"web", 8}}, now);
  CHECK(s["peers"][0]["digests_equal"] == false);
  CHECK(s["peers"][0]["differ"][0] == "web");
  CHECK(sluice::test::contains(a.metrics({{"web", 7}}),
                               "sluice_peer_up{peer=\"" + addr(port_b) + "\",instance=\"lb2\"} 1"));
  // b falls silent (what it sent is read first): after dead_ms, a sees it down.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  a.tick(now, la);
  a.tick(now + 200'000'000, la);
  CHECK(a.peers()[0].state == "down");
  CHECK(sluice::test::contains(a.metrics({{"web", 7}}),
                               "sluice_peer_up{peer=\"" + addr(port_b) + "\",instance=\"lb2\"} 0"));
}

TEST_CASE("bad peer options are refused with the option's name", "[peers]") {
  CHECK(sluice::test::contains(peer_sync(opts("", {"127.0.0.1:1"})).start().error_message(),
                               "--peer-listen"));
  CHECK(sluice::test::contains(peer_sync(opts("127.0.0.1", {})).start().error_message(),
                               "ADDR:PORT"));
  CHECK(sluice::test::contains(peer_sync(opts("127.0.0.1:9", {"[::1]:9"})).start().error_message(),
                               "address family"));
  CHECK(sluice::test::contains(peer_sync(opts("127.0.0.1:9", {"x:9"})).start().error_message(),
                               "not an IP"));
}
