// services[].defence and backends[].max_conns/min_conns: decoding, defaults,
// errors, the YAML/JSON round trip, the diff, the table entries they publish
// and sluicectl's save/restore lines.
#include <catch2/catch_test_macros.hpp>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "config_diff.h"
#include "config_encode.h"
#include "config_load.h"
#include "ctl_args.h"
#include "table_builder.h"

using namespace sluice;
using namespace sluice::cp;
using namespace sluice::ctl;

namespace {

const sluice::abi::capacities caps = sluice::abi::default_capacities;

const char* with_defence = R"(instance: edge1
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    mode: nat
    defence:
      mid_flow_rst: false
      synproxy: auto
      synproxy_syn_rate: 5000
      synproxy_half_open: 2000
      client_rate: 100
      client_burst: 300
      client_prefix4: 24
      client_prefix6: 48
    backends:
      - {address: 10.0.0.11, max_conns: 1000, min_conns: 800}
      - address: 10.0.0.12
)";

std::string errors_of(const std::string& yaml) {
  auto r = load_config_text(yaml, "t.yaml", caps);
  REQUIRE_FALSE(r.ok());
  return r.error_message();
}

} // namespace

TEST_CASE("defence fields decode; defaults when absent") {
  auto r = load_config_text(with_defence, "t.yaml", caps);
  INFO((r ? std::string() : r.error_message()));
  REQUIRE(r.ok());
  const auto& s = r.value().services[0].cfg;
  CHECK_FALSE(s.defence.mid_flow_rst);
  CHECK(s.defence.synproxy == sluice::abi::synproxy_mode::automatic);
  CHECK(s.defence.synproxy_syn_rate == 5000);
  CHECK(s.defence.synproxy_half_open == 2000);
  CHECK(s.defence.client_rate == 100);
  CHECK(s.defence.client_burst == 300);
  CHECK(s.defence.client_prefix4 == 24);
  CHECK(s.defence.client_prefix6 == 48);
  CHECK(s.backends[0].max_conns == 1000);
  CHECK(s.backends[0].min_conns == 800);
  CHECK(s.backends[1].max_conns == 0);

  auto d = load_config_text("services:\n  - {name: a, vip: 192.0.2.1, port: 80}\n", "t.yaml", caps);
  REQUIRE(d.ok());
  const flow_defence& x = d.value().services[0].cfg.defence;
  CHECK(x.mid_flow_rst);
  CHECK(x.synproxy == sluice::abi::synproxy_mode::off);
  CHECK(x.client_rate == 0);
  CHECK(x.client_prefix4 == 32);
  CHECK(x.client_prefix6 == 64);
}

TEST_CASE("defence errors name the field") {
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, defence: {synproxy: "
                  "maybe}}\n")
            .find("service a: defence.synproxy") != std::string::npos);
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, defence: {client_prefix4: "
                  "33}}\n")
            .find("service a: defence.client_prefix4: must be 1..32, got 33") != std::string::npos);
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, defence: {bogus: 1}}\n")
            .find("bogus") != std::string::npos);
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, backends: [{address: "
                  "10.0.0.1, max_conns: 10, min_conns: 20}]}\n")
            .find("service a: backend 10.0.0.1:80: min_conns: must be <= max_conns (10), got 20") !=
        std::string::npos);
  // What only the table builder knows: synproxy needs TCP in a NAT mode.
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, mode: dsr-l2, defence: "
                  "{synproxy: on}}\n")
            .find("synproxy needs a TCP service in nat or dnat mode") != std::string::npos);
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 53, proto: udp, mode: nat, "
                  "defence: {synproxy: auto}}\n")
            .find("synproxy needs a TCP service") != std::string::npos);
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, defence: {synproxy: auto, "
                  "synproxy_syn_rate: 0}}\n")
            .find("synproxy auto needs thresholds > 0") != std::string::npos);
  CHECK(errors_of("services:\n  - {name: a, vip: 192.0.2.1, port: 80, defence: {client_burst: "
                  "5}}\n")
            .find("client_burst 5 needs a client_rate") != std::string::npos);
}

TEST_CASE("defence round-trips through YAML and JSON, and shows in the diff") {
  auto a = load_config_text(with_defence, "t.yaml", caps);
  REQUIRE(a.ok());
  const std::string text = to_yaml(a.value());
  auto b = load_config_text(text, "state.yaml", caps);
  INFO(text);
  REQUIRE(b.ok());
  CHECK(to_yaml(b.value()) == text);
  CHECK(to_json(a.value()) == to_json(b.value()));
  CHECK(to_json(a.value())["services"][0]["defence"]["synproxy"] == "auto");

  std::string y = with_defence;
  y.replace(y.find("synproxy: auto"), 14, "synproxy: on");
  y.replace(y.find("max_conns: 1000"), 15, "max_conns: 900");
  auto c = load_config_text(y, "t.yaml", caps);
  REQUIRE(c.ok());
  auto diff = config_diff(a.value(), c.value());
  std::string all;
  for (const auto& l : diff)
    all += l + "\n";
  INFO(all);
  CHECK(all.find("~ service web: defence.synproxy \"auto\" -> \"on\"") != std::string::npos);
  CHECK(all.find("max_conns 1000 -> 900") != std::string::npos);
}

TEST_CASE("defence reaches the published service and backend entries") {
  auto a = load_config_text(with_defence, "t.yaml", caps);
  REQUIRE(a.ok());
  std::vector<service_config> svcs;
  for (const auto& s : a.value().services)
    svcs.push_back(s.cfg);
  table_builder tb(caps);
  sluice::abi::layout l = sluice::abi::compute_layout(caps);
  std::unique_ptr<uint8_t, decltype(&std::free)> mem{
      static_cast<uint8_t*>(std::aligned_alloc(4096, l.slot_size)), &std::free};
  std::memset(mem.get(), 0xa5, l.slot_size);
  auto r = tb.build(svcs, make_slot_target(mem.get(), l, caps), 1);
  INFO((r ? std::string() : r.error_message()));
  REQUIRE(r.ok());
  table_view v = make_slot_view(mem.get(), l);
  const sluice::abi::service_entry& e = v.services[0];
  CHECK(e.client_rate == 100);
  CHECK(e.client_burst == 300);
  CHECK(e.client_prefix4 == 24);
  CHECK(e.client_prefix6 == 48);
  CHECK(e.synproxy == uint8_t(sluice::abi::synproxy_mode::automatic));
  CHECK(e.defence_flags == sluice::abi::service_no_mid_flow_rst);
  CHECK(e.synproxy_syn_rate == 5000);
  CHECK(e.synproxy_half_open == 2000);
  bool found = false;
  for (uint32_t i = 0; i < v.hdr->backend_limit; ++i)
    if (const auto& be = v.backends[i];
        (be.flags & sluice::abi::backend_in_use) && be.max_conns == 1000) {
      CHECK(be.min_conns == 800);
      found = true;
    }
  CHECK(found);
}

TEST_CASE("sluicectl: --defence, --synproxy, --max-conns and save/restore") {
  auto f = parse_service_fields({"--vip", "192.0.2.1", "--port", "80", "--defence",
                                 R"({"client_rate": 50})", "--synproxy", "on"});
  REQUIRE(f.ok());
  CHECK(f.value()["defence"]["client_rate"] == 50);
  CHECK(f.value()["defence"]["synproxy"] == "on");
  CHECK_FALSE(parse_service_fields({"--defence", "[1]"}).ok());
  auto b = parse_backend_fields("10.0.0.1", {"--max-conns", "10", "--min-conns", "5"});
  REQUIRE(b.ok());
  CHECK(b.value()["max_conns"] == 10);
  CHECK(b.value()["min_conns"] == 5);

  auto a = load_config_text(with_defence, "t.yaml", caps);
  REQUIRE(a.ok());
  const std::string saved = save_text(to_json(a.value()));
  INFO(saved);
  CHECK(saved.find("--defence {") != std::string::npos);
  CHECK(saved.find("--max-conns 1000 --min-conns 800") != std::string::npos);
  auto restored = restore_config(saved);
  INFO((restored ? std::string() : restored.error_message()));
  REQUIRE(restored.ok());
  const auto& rs = restored.value()["services"][0];
  CHECK(rs["defence"]["synproxy"] == "auto");
  CHECK(rs["defence"]["client_prefix6"] == 48);
  CHECK(rs["backends"][0]["max_conns"] == 1000);
}
