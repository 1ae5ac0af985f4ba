// Config loading and validation: exact error messages (file, line, field
// path), unknown and repeated fields, duplicates, and the YAML round trip of
// the state file.
#include <catch2/catch_test_macros.hpp>
#include <filesystem>
#include <string>

#include "config_encode.h"
#include "config_load.h"
#include "temp_shm.h"

using namespace sluice;
using namespace sluice::cp;
using sluice::test::contains;

namespace {

const abi::capacities caps = abi::default_capacities;

std::string errors_of(const std::string& yaml) {
  auto r = load_config_text(yaml, "t.yaml", caps);
  REQUIRE_FALSE(r.ok());
  return r.error_message();
}

const char* good = R"(instance: edge1
limits:
  flow_table_size: 65536
  maglev_size: 65537
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    proto: tcp
    mode: nat
    timeouts: {syn: 10, established: 600}
    backends:
      - address: 10.0.0.11
        weight: 3
      - address: 10.0.0.12
        port: 8080
        state: draining
  - name: dns
    vip: "2001:db8::53"
    port: 53
    proto: udp
    mode: dsr-gue
    gue_port: 7000
    backends:
      - {address: "fd00::1"}
)";

} // namespace

TEST_CASE("a valid config loads with its values and defaults") {
  auto r = load_config_text(good, "t.yaml", caps);
  INFO((r ? std::string() : r.error_message()));
  REQUIRE(r.ok());
  const auto& c = r.value();
  CHECK(c.instance == "edge1");
  CHECK(c.limits.flow_table_size == 65536);
  REQUIRE(c.services.size() == 2);
  const auto& web = c.services[0];
  CHECK(web.name == "web");
  CHECK(format_ip(web.cfg.vip) == "192.0.2.10");
  CHECK(web.cfg.mode == abi::fwd_mode::nat);
  CHECK(web.cfg.timeouts.syn_s == 10);
  CHECK(web.cfg.timeouts.established_s == 600);
  CHECK(web.cfg.timeouts.fin_s == 7); // default
  REQUIRE(web.cfg.backends.size() == 2);
  CHECK(web.cfg.backends[0].weight == 3);
  CHECK(web.cfg.backends[0].port == 0);
  CHECK(web.cfg.backends[1].port == 8080);
  CHECK(web.cfg.backends[1].weight == 1);
  CHECK(web.cfg.backends[1].state == abi::backend_state::draining);
  CHECK(c.services[1].cfg.proto == 17);
  CHECK(c.services[1].cfg.gue_port == 7000);
}

TEST_CASE("errors name file, line and field path") {
  std::string y = good;
  y.replace(y.find("weight: 3"), 9, "weight: -1");
  CHECK(errors_of(y) ==
        "t.yaml:14: service web: backend 10.0.0.11:80: weight: must be 0..65535, got -1");

  y = good;
  y.replace(y.find("    proto: tcp"), 14, "    colour: red");
  CHECK(errors_of(y) ==
        "t.yaml:9: service web: colour: unknown field (expected one of: name, vip, port, proto, "
        "mode, scheduler, hash_src, sh_prefix4, sh_prefix6, sh_timeout, timeouts, gue_port, "
        "on_backend_down, health, defence, announce, quorum, backends)");

  y = good;
  y.replace(y.find("10.0.0.12"), 9, "10.0.0.300");
  CHECK(errors_of(y) ==
        "t.yaml:15: service web: backend #2: address: must be an IPv4 or IPv6 address, got "
        "'10.0.0.300'");

  y = good;
  y.replace(y.find("mode: nat"), 9, "mode: dsr-foo");
  CHECK(errors_of(y) == "t.yaml:10: service web: mode: must be one of nat, dnat, dsr-l2, dsr-ipip, "
                        "dsr-gue, got 'dsr-foo'");

  y = good;
  y.replace(y.find("port: 80\n"), 9, "port: 0\n");
  CHECK(errors_of(y) == "t.yaml:8: service web: port: must be 1..65535, got 0");
}

TEST_CASE("duplicate services, backends and keys are errors") {
  std::string y = good;
  y.replace(y.find("name: dns"), 9, "name: web");
  CHECK(errors_of(y) == "t.yaml:18: service web: name: duplicate service name 'web' (also "
                        "tcp 192.0.2.10:80 at line 6)");

  y = good;
  y.replace(y.find("port: 8080"), 10, "port: 80");
  y.replace(y.find("10.0.0.12"), 9, "10.0.0.11");
  CHECK(errors_of(y) == "t.yaml:15: service web: backend 10.0.0.11:80: duplicate backend "
                        "10.0.0.11:80 (listed first at line 13)");

  CHECK(errors_of("instance: a\ninstance: b\n") ==
        "t.yaml:2: instance: duplicate key (first at line 1)");

  y = good;
  y += "  - name: web2\n    vip: 192.0.2.10\n    port: 80\n";
  CHECK(errors_of(y) == "t.yaml:26: service web2: duplicate service tcp 192.0.2.10:80 (also "
                        "service 'web' at line 6)");
}

TEST_CASE("malformed YAML, wrong types and missing fields") {
  CHECK(contains(errors_of("services: [\n  - {name: x\n"), "t.yaml:2:3: malformed YAML:"));
  CHECK(errors_of("services: 3\n") == "t.yaml:1: services: must be a list");
  CHECK(errors_of("services:\n  - vip: 192.0.2.1\n") ==
        "t.yaml:2: service #1: name: required field missing\n"
        "t.yaml:2: service #1: port: required field missing");
  CHECK(errors_of("limits:\n  maglev_size: 65536\n") ==
        "t.yaml:2: limits.maglev_size: must be a prime in 7..4194304, got 65536");
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: eighty}\n") ==
        "t.yaml:2: service a: port: must be an integer 1..65535, got 'eighty'");
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, mode: nat, backends: "
                  "[{address: \"fd00::1\"}]}\n") ==
        "t.yaml:2: service a: backend [fd00::1]:80: address: must be of the VIP's family in mode "
        "nat, got "
        "fd00::1");
}

TEST_CASE("input that stalls yaml-cpp's document loop is an error, not a hang") {
  using namespace std::string_literals;
  // Each of these made yaml-cpp 0.7's LoadAll build empty documents at the
  // same position until memory ran out (fuzz_config, CI run of stop 17).
  CHECK(errors_of("\"x\", b\n") ==
        "t.yaml:1:4: malformed YAML: unexpected ',' where a value or key should start (a ',' "
        "belongs inside [...] or {...})");
  CHECK(contains(errors_of("'x', b\n"), "t.yaml:1:4: malformed YAML: unexpected ','"));
  CHECK(contains(errors_of("&a , b\n"), "t.yaml:1:4: malformed YAML: unexpected ','"));
  CHECK(contains(errors_of("[a], b\n"), "t.yaml:1:4: malformed YAML: unexpected ','"));
  CHECK(contains(errors_of("{services: []}, b\n"), "malformed YAML: unexpected ','"));
  CHECK(errors_of(", a\n") ==
        "t.yaml:1: a line cannot start with ',' outside a flow collection ([...] or {...})");
  // The CI reproducer: a NUL hid the ',' from the line check.
  CHECK(errors_of("\0,\0\x11\0\0\0on"s) ==
        "t.yaml:1: control character 0x00 at offset 0: a config holds printable text only; the "
        "file is damaged or not YAML");
  CHECK(contains(errors_of("services: []\n# \x1b[31m\n"), "t.yaml:2: control character 0x1b"));
  CHECK(contains(errors_of("a: \xc2\x9b\n"), "t.yaml:1: control character 0xc2"));
  // What YAML allows stays allowed: TAB, CR, NEL and a second document's
  // own error.
  CHECK(load_config_text("services: []\r\n#\ttab \xc2\x85\n", "t.yaml", caps).ok());
  CHECK(
      contains(errors_of("services: []\n---\nservices: []\n"), "t.yaml:2: a second YAML document"));
}

TEST_CASE("what only the table builder knows is located at the service") {
  std::string y = good;
  y.replace(y.find("mode: nat"), 9, "mode: dsr-ipip");
  CHECK(errors_of(y) == "t.yaml:6: service web: service 192.0.2.10:80/tcp: backend "
                        "10.0.0.12:8080: dsr-ipip cannot rewrite the port: backend port must be 0 "
                        "or 80");
}

TEST_CASE("schedulers and their parameters") {
  auto r = load_config_text("services:\n  - {name: a, vip: 192.0.2.1, port: 80, scheduler: sh, "
                            "sh_prefix4: 24, sh_timeout: 60, hash_src: true}\n",
                            "t.yaml", caps);
  REQUIRE(r.ok());
  CHECK(r->services[0].cfg.scheduler == abi::scheduler_kind::sh);
  CHECK(r->services[0].cfg.sh_prefix4 == 24);
  CHECK(r->services[0].cfg.sh_prefix6 == 128);
  CHECK(r->services[0].cfg.sh_timeout_s == 60);
  CHECK(r->services[0].cfg.hash_src);
  auto back = load_config_text(to_yaml(r.value()), "s.yaml", caps);
  REQUIRE(back.ok());
  CHECK(to_json(back.value()) == to_json(r.value()));
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, scheduler: fastest}\n") ==
        "t.yaml:2: service a: scheduler: must be one of maglev, rr, wrr, lc, wlc, sh, random, "
        "two-choices, least-bandwidth, least-response-time, got 'fastest'");
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, sh_prefix4: 33}\n") ==
        "t.yaml:2: service a: sh_prefix4: must be 0..32, got 33");
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, hash_src: yes}\n") ==
        "t.yaml:2: service a: hash_src: must be true or false, got 'yes'");
}

TEST_CASE("on_backend_down: keep (default) or reset") {
  auto r = load_config_text(good, "t.yaml", caps);
  REQUIRE(r.ok());
  CHECK_FALSE(r.value().services[0].cfg.reset_on_down);
  std::string y = good;
  y.replace(y.find("    mode: nat"), 13, "    mode: nat\n    on_backend_down: reset");
  auto r2 = load_config_text(y, "t.yaml", caps);
  INFO((r2 ? std::string() : r2.error_message()));
  REQUIRE(r2.ok());
  CHECK(r2.value().services[0].cfg.reset_on_down);
  y = good;
  y.replace(y.find("    mode: nat"), 13, "    mode: nat\n    on_backend_down: explode");
  CHECK(errors_of(y).find("t.yaml:11: service web: on_backend_down:") == 0);
}

TEST_CASE("an empty file is an empty config") {
  auto r = load_config_text("", "t.yaml", caps);
  REQUIRE(r.ok());
  CHECK(r->services.empty());
}

TEST_CASE("the state file's YAML reads back to the same config") {
  auto a = load_config_text(good, "t.yaml", caps);
  REQUIRE(a.ok());
  const std::string text = to_yaml(a.value());
  auto b = load_config_text(text, "state.yaml", caps);
  REQUIRE(b.ok());
  CHECK(to_yaml(b.value()) == text);
  CHECK(to_json(a.value()) == to_json(b.value()));
}

TEST_CASE("the shipped examples are valid") {
  const std::filesystem::path dir = std::filesystem::path(SLUICE_SOURCE_DIR) / "docs" / "examples";
  unsigned n = 0;
  for (const char* f : {"one-armed-dsr.yaml", "two-armed-nat.yaml", "mixed.yaml"}) {
    auto r = load_config_file((dir / f).string(), caps);
    INFO(f << ": " << (r ? std::string("ok") : r.error_message()));
    CHECK(r.ok());
    if (r)
      CHECK_FALSE(r->services.empty());
    ++n;
  }
  CHECK(n == 3);
}

TEST_CASE("per-state flow timeouts: defaults, values, limits and the round trip") {
  auto d = load_config_text("services:\n  - {name: a, vip: 192.0.2.1, port: 80, backends: []}\n",
                            "t.yaml", caps);
  REQUIRE(d.ok());
  const flow_timeouts& t0 = d.value().services[0].cfg.timeouts;
  CHECK(t0.syn_s == 30);
  CHECK(t0.established_s == 900);
  CHECK(t0.fin_s == 7);
  CHECK(t0.udp_s == 300);
  CHECK(t0.syn_recv_s == 30);
  CHECK(t0.time_wait_s == 7);
  CHECK(t0.closed_s == 3);
  CHECK(t0.udp_unanswered_s == 30);
  CHECK(t0.adopted_s == 10);
  const std::string y = "services:\n  - {name: a, vip: 192.0.2.1, port: 80, backends: [],\n"
                        "     timeouts: {syn_recv: 11, time_wait: 12, closed: 13, "
                        "udp_unanswered: 14, adopted: 15}}\n";
  auto r = load_config_text(y, "t.yaml", caps);
  INFO((r ? std::string() : r.error_message()));
  REQUIRE(r.ok());
  const flow_timeouts& t = r.value().services[0].cfg.timeouts;
  CHECK(t.syn_recv_s == 11);
  CHECK(t.time_wait_s == 12);
  CHECK(t.closed_s == 13);
  CHECK(t.udp_unanswered_s == 14);
  CHECK(t.adopted_s == 15);
  auto back = load_config_text(to_yaml(r.value()), "s.yaml", caps);
  REQUIRE(back.ok());
  CHECK(back.value().services[0].cfg.timeouts.adopted_s == 15);
  CHECK(to_json(back.value()) == to_json(r.value()));
  CHECK(to_json(r.value())["services"][0]["timeouts"]["time_wait"] == 12);
  // Zero, too large (seconds * 1000 must stay far inside 32 bits) and unknown.
  CHECK(contains(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, backends: [],"
                           " timeouts: {adopted: 0}}\n"),
                 "timeouts.adopted"));
  CHECK(contains(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, backends: [],"
                           " timeouts: {time_wait: 604801}}\n"),
                 "timeouts.time_wait"));
  CHECK(contains(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, backends: [],"
                           " timeouts: {closed: 4294967296}}\n"),
                 "timeouts.closed"));
  CHECK(contains(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, backends: [],"
                           " timeouts: {lingering: 5}}\n"),
                 "lingering"));
}

TEST_CASE("independent mistakes are all reported in one run, named by service") {
  const std::string y = "services:\n"
                        "  - name: web\n"
                        "    vip: 192.0.2.10\n"
                        "    port: 80\n"
                        "    colour: red\n"
                        "    backends:\n"
                        "      - {address: 10.0.0.1, weight: 70000}\n"
                        "  - name: api\n"
                        "    vip: 192.0.2.11\n"
                        "    port: 443\n"
                        "    backends: [{address: 10.0.0.2}, {address: 10.0.0.2}]\n"
                        "  - {name: web, vip: 192.0.2.12, port: 80}\n"
                        "  - {name: dns, vip: 192.0.2.11, port: 443}\n"
                        "  - name: l2\n"
                        "    vip: 192.0.2.13\n"
                        "    port: 80\n"
                        "    mode: dsr-l2\n"
                        "    backends: [{address: 192.0.2.50, port: 8080}]\n";
  const std::string e = errors_of(y);
  CHECK(e == "t.yaml:5: service web: colour: unknown field (expected one of: name, vip, port, "
             "proto, mode, scheduler, hash_src, sh_prefix4, sh_prefix6, sh_timeout, timeouts, "
             "gue_port, on_backend_down, health, defence, announce, quorum, backends)\n"
             "t.yaml:7: service web: backend 10.0.0.1:80: weight: must be 0..65535, got 70000\n"
             "t.yaml:11: service api: backend 10.0.0.2:443: duplicate backend 10.0.0.2:443 "
             "(listed first at line 11)\n"
             "t.yaml:12: service web: name: duplicate service name 'web' (also tcp "
             "192.0.2.10:80 at line 2)\n"
             "t.yaml:13: service dns: duplicate service tcp 192.0.2.11:443 (also service 'api' "
             "at line 8)\n"
             "t.yaml:14: service l2: service 192.0.2.13:80/tcp: backend 192.0.2.50:8080: dsr-l2 "
             "cannot rewrite the port: backend port must be 0 or 80");
  CHECK(e.find("services[") == std::string::npos);
}
