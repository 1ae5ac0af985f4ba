// `sluicectl save` / `restore`: the line-per-command format round-trips a
// config exactly, health checks (per service and per backend) included.
#include <catch2/catch_test_macros.hpp>

#include "config_decode.h"
#include "config_encode.h"
#include "config_load.h"
#include "ctl_args.h"
#include "json_tree.h"

using namespace sluice;
using namespace sluice::cp;

namespace {

const sluice::abi::capacities caps{64, 1024, 1u << 20, 4};

const char* config_yaml = R"(instance: edge1
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    mode: nat
    scheduler: wlc
    on_backend_down: reset
    timeouts: {syn: 20, fin: 5, time_wait: 4, closed: 2, adopted: 12, udp_unanswered: 25,
               syn_recv: 15}
    announce: always
    quorum: 2
    health: {check: http, path: /healthz, host: www.example.org, interval_ms: 500,
             fall: 3, status_min: 200, status_max: 299, body_contains: "all good"}
    backends:
      - {address: 10.0.0.11, weight: 3}
      - {address: 10.0.0.12, port: 8080, state: draining,
         health: {check: tcp, interval_ms: 250}}
  - name: dns
    vip: "2001:db8::53"
    port: 53
    proto: udp
    mode: dsr-ipip
    scheduler: sh
    sh_prefix6: 64
    defence: {mid_flow_rst: false, client_rate: 50}
    backends:
      - {address: "2001:db8:b::1"}
)";

} // namespace

TEST_CASE("save then restore gives back the same config") {
  auto c = load_config_text(config_yaml, "t.yaml", caps);
  INFO((c ? std::string() : c.error_message()));
  REQUIRE(c.ok());
  const nlohmann::json original = to_json(c.value());
  const std::string saved = ctl::save_text(original);
  INFO(saved);
  CHECK(saved.find("--health ") != std::string::npos);
  // Defence: only what differs from the defaults, and nothing for web.
  CHECK(saved.find(R"(--defence {"client_rate":50,"mid_flow_rst":false})") != std::string::npos);
  CHECK(saved.find("--defence") == saved.rfind("--defence"));
  CHECK(saved.find("--timeout-time-wait 4 --timeout-closed 2 --timeout-udp-unanswered 25 "
                   "--timeout-adopted 12") != std::string::npos);
  auto restored = ctl::restore_config(saved);
  REQUIRE(restored.ok());
  nlohmann::json j = restored.value();
  j["instance"] = "edge1";
  decode_result d = decode_config(to_tree(j));
  INFO(format_issues("restored", d.issues));
  REQUIRE(d.issues.empty());
  CHECK(to_yaml(d.config) == to_yaml(c.value()));
  // And saving again prints the same lines.
  CHECK(ctl::save_text(to_json(d.config)) == saved);
}

TEST_CASE("restore refuses a malformed --health") {
  auto r = ctl::restore_config("service add web --vip 192.0.2.10 --port 80 --health {oops\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error_message().find("line 1: --health: expected a JSON object") == 0);
}

TEST_CASE("restore reports every bad line at once") {
  auto r = ctl::restore_config("service add a --vip 192.0.2.1 --port 80 --colour red\n"
                               "backend add a 10.0.0.1\n"
                               "frobnicate\n"
                               "backend add b 10.0.0.2\n");
  REQUIRE_FALSE(r.ok());
  // The backend of the refused service a is not reported again.
  CHECK(r.error_message() ==
        "line 1: unrecognised option '--colour': service add a --vip 192.0.2.1 --port 80 "
        "--colour red\n"
        "line 3: expected 'limits ...', 'service add ...' or 'backend add ...': frobnicate\n"
        "line 4: service 'b' is not added above: backend add b 10.0.0.2");
  std::map<std::string, int> lines;
  REQUIRE(ctl::restore_config("\n# c\nservice add web --vip 192.0.2.1 --port 80\n", &lines).ok());
  CHECK(lines == std::map<std::string, int>{{"web", 3}});
  CHECK(ctl::locate_services("service web: port: bad\nservice webx: y\nother", lines) ==
        "service web (line 3): port: bad\nservice webx: y\nother");
}
