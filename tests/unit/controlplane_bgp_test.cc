// bgp_announcer: which prefixes are announced (policy, quorum, serving state,
// NAT pool), the BIRD include file, the instance's dataplane check, and the
// reload over a fake BIRD control socket (success, BIRD's error, BIRD absent).
#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "bgp_announcer.h"
#include "config_load.h"
#include "shm_atomic.h"
#include "stats_reader.h"
#include "temp_shm.h"

using namespace sluice;
using namespace sluice::cp;
using sluice::test::contains;

namespace {

const abi::capacities caps{64, 1024, 1u << 20, 4};

cp_config load(const std::string& yaml) {
  auto c = load_config_text(yaml, "t.yaml", caps);
  INFO((c ? std::string() : c.error_message()));
  REQUIRE(c.ok());
  return c.value();
}

const char* two_services = R"(instance: lb1
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    mode: nat
    quorum: 2
    backends:
      - {address: 10.0.0.11}
      - {address: 10.0.0.12}
  - name: web-tls
    vip: 192.0.2.10
    port: 443
    mode: nat
    announce: never
    backends:
      - {address: 10.0.0.11}
  - name: dns
    vip: "2001:db8::53"
    port: 53
    proto: udp
    mode: dsr-ipip
    announce: always
    backends: []
)";

serving_state serving() {
  serving_state s;
  s.dataplane = true;
  return s;
}

const route_reason* find(const std::vector<route_reason>& r, const std::string& a) {
  for (const auto& x : r)
    if (x.prefix == *parse_ip(a))
      return &x;
  return nullptr;
}

// A BIRD control socket that answers every command with `reply`.
struct fake_bird {
  std::string path = "/tmp/sluice-unittest-bird-" + std::to_string(::getpid()) + ".ctl";
  std::string reply;
  std::atomic<int> commands{0};
  std::string last_command;
  int fd = -1;
  std::thread t;
  std::atomic<bool> stop{false};
  explicit fake_bird(std::string r) : reply(std::move(r)) {
    ::unlink(path.c_str());
    fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    t = std::thread([this] {
      while (!stop) {
        int c = ::accept(fd, nullptr, nullptr);
        if (c < 0)
          return;
        std::string hello = "0001 BIRD 2.0.12 ready.\n";
        (void)!::write(c, hello.data(), hello.size());
        char buf[256];
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n > 0) {
          last_command = std::string(buf, size_t(n));
          ++commands; // before the reply: the client returns as soon as it has it
          (void)!::write(c, reply.data(), reply.size());
        }
        ::close(c);
      }
    });
  }
  ~fake_bird() {
    stop = true;
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    t.join();
    ::unlink(path.c_str());
  }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

} // namespace

TEST_CASE("announce policy, quorum and serving state decide each VIP", "[bgp]") {
  auto c = load(two_services);
  auto eff = c.table_input();
  auto r = wanted_routes(c, eff, serving(), {});
  REQUIRE(r.size() == 2); // one entry per distinct VIP
  CHECK(find(r, "192.0.2.10")->announced);
  CHECK(find(r, "192.0.2.10")->services == std::vector<std::string>{"web", "web-tls"});
  CHECK(contains(find(r, "192.0.2.10")->why, "web: 2 healthy, quorum 2"));
  CHECK(contains(find(r, "192.0.2.10")->why, "web-tls: announce never"));
  CHECK(find(r, "2001:db8::53")->announced); // always: even without a backend

  SECTION("one backend down: below quorum 2, withdrawn") {
    eff[0].backends[1].state = abi::backend_state::down;
    r = wanted_routes(c, eff, serving(), {});
    CHECK_FALSE(find(r, "192.0.2.10")->announced);
    CHECK(contains(find(r, "192.0.2.10")->why, "1 healthy of quorum 2"));
  }
  SECTION("a weight-0 (drained) backend is not healthy") {
    eff[0].backends[0].weight = 0;
    CHECK_FALSE(find(wanted_routes(c, eff, serving(), {}), "192.0.2.10")->announced);
  }
  SECTION("instance not serving: everything withdrawn, even announce always") {
    serving_state s = serving();
    s.drained = true;
    s.reason = "instance drained";
    r = wanted_routes(c, eff, s, {});
    CHECK_FALSE(find(r, "192.0.2.10")->announced);
    CHECK_FALSE(find(r, "2001:db8::53")->announced);
    CHECK(contains(find(r, "2001:db8::53")->why, "instance drained"));
  }
  SECTION("NAT pool addresses follow the nat services") {
    r = wanted_routes(c, eff, serving(), {*parse_ip("198.51.100.9")});
    REQUIRE(find(r, "198.51.100.9"));
    CHECK(find(r, "198.51.100.9")->announced);
    eff[0].backends[0].state = abi::backend_state::down;
    r = wanted_routes(c, eff, serving(), {*parse_ip("198.51.100.9")});
    CHECK_FALSE(find(r, "198.51.100.9")->announced);
  }
}

TEST_CASE("the BIRD include file: routes, preference, sessions with BFD", "[bgp]") {
  auto c = load(two_services);
  auto r = wanted_routes(c, c.table_input(), serving(), {});
  bgp_options o;
  o.include_file = "/tmp/x.conf";
  std::string t = render_bird_include(o, "lb1", r);
  CHECK(
      contains(t, "protocol static sluice_vips4 {\n  ipv4;\n  route 192.0.2.10/32 blackhole;\n}"));
  CHECK(contains(t, "route 2001:db8::53/128 blackhole;"));
  CHECK_FALSE(contains(t, "bgp_med"));
  CHECK_FALSE(contains(t, "protocol bgp"));

  o.local_as = 65001;
  o.med = 200;
  o.prepend = 2;
  o.communities = {{65000, 666}};
  o.neighbors = {{*parse_ip("198.51.100.1"), 65000}};
  REQUIRE(validate_bgp_options(o).ok());
  t = render_bird_include(o, "lb1", r);
  CHECK(contains(t, "bgp_med = 200;"));
  CHECK(contains(t, "bgp_path.prepend(65001);\n  bgp_path.prepend(65001);\n"));
  CHECK(contains(t, "bgp_community.add((65000, 666));"));
  CHECK(contains(t, "protocol bfd sluice_bfd"));
  CHECK(contains(t, "min rx interval 100 ms;"));
  CHECK(contains(t, "neighbor 198.51.100.1 as 65000;"));
  CHECK(contains(t, "bfd on;"));
  CHECK(contains(t, "export filter sluice_export;"));

  // Nothing announced: the static protocols stay, empty.
  for (auto& x : r)
    x.announced = false;
  t = render_bird_include(o, "lb1", r);
  CHECK_FALSE(contains(t, "route "));
  CHECK(contains(t, "protocol static sluice_vips6 {\n  ipv6;\n}"));
}

TEST_CASE("bad BGP options are refused with the option's name", "[bgp]") {
  bgp_options o;
  o.neighbors = {{*parse_ip("198.51.100.1"), 65000}};
  CHECK(contains(validate_bgp_options(o).error_message(), "--bgp-include"));
  o.include_file = "/tmp/x";
  CHECK(contains(validate_bgp_options(o).error_message(), "--bgp-local-as"));
  o.local_as = 65001;
  o.bfd_multiplier = 1;
  CHECK(contains(validate_bgp_options(o).error_message(), "--bfd-multiplier"));
  CHECK(contains(parse_neighbor("198.51.100.1").error_message(), "ADDR,AS"));
  CHECK(contains(parse_neighbor("nope,1").error_message(), "not an IP"));
  CHECK(contains(parse_neighbor("198.51.100.1,0").error_message(), "AS must be"));
  CHECK(parse_neighbor("2001:db8::1,4200000000")->as == 4200000000u);
  CHECK(parse_community("65000:100")->second == 100);
  CHECK_FALSE(parse_community("65536:1").ok());
  CHECK_FALSE(parse_community("1").ok());
}

TEST_CASE("quorum and announce are validated and round-trip", "[bgp]") {
  auto bad = load_config_text("services:\n  - {name: a, vip: 192.0.2.1, port: 80, quorum: 0}\n",
                              "t.yaml", caps);
  CHECK(contains(bad.error_message(), "quorum"));
  bad = load_config_text("services:\n  - {name: a, vip: 192.0.2.1, port: 80, quorum: 2000}\n",
                         "t.yaml", caps);
  CHECK(contains(bad.error_message(), "must be 1..1024"));
  bad = load_config_text("services:\n  - {name: a, vip: 192.0.2.1, port: 80, announce: maybe}\n",
                         "t.yaml", caps);
  CHECK(contains(bad.error_message(), "quorum, always, never"));
}

TEST_CASE("the dataplane check: pid, heartbeats, live workers", "[bgp]") {
  sluice::test::temp_shm_path path{"bgp"};
  auto r = shm_region::create_or_attach(path.path, caps);
  REQUIRE(r.ok());
  serving_state s;
  check_dataplane(*r, 1000, s);
  CHECK_FALSE(s.dataplane);
  CHECK(s.reason == "dataplane not running");
  store_release(r->header()->procs.dp_pid, int32_t(::getpid()));
  store_release(r->header()->procs.dp_heartbeat_ns, monotonic_ns());
  check_dataplane(*r, 1000, s);
  CHECK(s.reason == "no dataplane worker running");
  store_release(r->worker_ack(1)->live, 1u);
  check_dataplane(*r, 1000, s);
  CHECK(s.dataplane);
  store_release(r->worker_ack(1)->heartbeat_ns, monotonic_ns() - uint64_t(5'000'000'000));
  check_dataplane(*r, 1000, s);
  CHECK_FALSE(s.dataplane);
  CHECK(s.reason == "worker 1 heartbeat stale");
  store_release(r->worker_ack(1)->heartbeat_ns, monotonic_ns());
  store_release(r->header()->procs.dp_heartbeat_ns, monotonic_ns() - uint64_t(5'000'000'000));
  check_dataplane(*r, 1000, s);
  CHECK(s.reason == "dataplane heartbeat stale");
}

TEST_CASE("reloads BIRD only when the file changes; withdraws on stop", "[bgp]") {
  fake_bird bird("0002-Reading configuration from /etc/bird/bird.conf\n0003 Reconfigured\n");
  const std::string file = bird.path + ".include";
  bgp_options o;
  o.include_file = file;
  o.bird_socket = bird.path;
  std::vector<std::string> logs;
  bgp_announcer a(o, "lb1", [&](const std::string& m) { logs.push_back(m); });
  auto c = load(two_services);
  a.update(c, c.table_input(), serving(), {});
  CHECK(bird.commands == 1);
  CHECK(bird.last_command == "configure\n");
  CHECK(contains(slurp(file), "route 192.0.2.10/32 blackhole;"));
  a.update(c, c.table_input(), serving(), {});
  CHECK(bird.commands == 1); // unchanged: no reload
  auto eff = c.table_input();
  eff[0].backends[0].state = abi::backend_state::down;
  a.update(c, eff, serving(), {});
  CHECK(bird.commands == 2);
  CHECK_FALSE(contains(slurp(file), "192.0.2.10/32"));
  CHECK(a.status()["routes"][0]["announced"] == false);
  REQUIRE(a.withdraw_all().ok());
  CHECK(bird.commands == 3);
  CHECK_FALSE(contains(slurp(file), "route "));
  CHECK(a.reload_failures() == 0);
  ::unlink(file.c_str());
}

TEST_CASE("a BIRD error or an absent BIRD is reported, counted and retried", "[bgp]") {
  fake_bird bird("8002 /etc/bird/bird.conf:12:3 syntax error\n");
  auto r = bird_command(bird.path, "configure");
  CHECK(contains(r.error_message(), "syntax error"));
  CHECK(contains(bird_command("/nonexistent/bird.ctl", "show status").error_message(),
                 "cannot reach BIRD"));
  bgp_options o;
  o.include_file = bird.path + ".include";
  o.bird_socket = bird.path;
  bgp_announcer a(o, "lb1", [](const std::string&) {});
  auto c = load(two_services);
  a.update(c, c.table_input(), serving(), {});
  CHECK(a.reload_failures() == 1);
  CHECK(contains(a.status()["last_error"].get<std::string>(), "syntax error"));
  a.update(c, c.table_input(), serving(), {}); // within a second: no retry yet
  CHECK(a.reload_failures() == 1);
  ::unlink(o.include_file.c_str());
}
