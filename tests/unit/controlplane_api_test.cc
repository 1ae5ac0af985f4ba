// The JSON API handler against a cp_state with a fake publisher: request
// validation, clear error objects, and that API input is decoded by the same
// decoder as config files.
#include <catch2/catch_test_macros.hpp>

#include "api_handler.h"
#include "config_load.h"
#include "temp_shm.h"

using namespace sluice;
using namespace sluice::cp;
using nlohmann::json;
using sluice::test::contains;

namespace {

struct fixture {
  uint64_t gen = 0;
  unsigned publishes = 0;
  cp_state state{abi::default_capacities,
                 [this](const std::vector<service_config>&) -> result<publish_outcome> {
                   ++publishes;
                   return publish_outcome{++gen, ""};
                 },
                 nullptr};
  daemon_context ctx;
  api_handler api{ctx};
  fixture() {
    ctx.state = &state;
    auto c = load_config_text("instance: t\nservices:\n  - {name: web, vip: 192.0.2.10, port: 80, "
                              "backends: [{address: 10.0.0.11}]}\n",
                              "t", abi::default_capacities);
    REQUIRE(c.ok());
    REQUIRE(state.load(c.value()).ok());
  }
  json call(json req) {
    req["version"] = 1;
    return api.handle(req);
  }
};

} // namespace

TEST_CASE("malformed requests get error objects") {
  fixture f;
  auto a = json::parse(f.api.handle_line("{not json"));
  CHECK(a["ok"] == false);
  CHECK(contains(a["error"], "malformed JSON"));
  CHECK(a["version"] == 1);
  a = f.api.handle(json{{"cmd", "status"}});
  CHECK(a["error"] == "unsupported API version (this control plane speaks 1)");
  a = f.call({{"cmd", "frobnicate"}});
  CHECK(a["error"] == "unknown command 'frobnicate'");
  a = f.call({{"cmd", "backend.set-weight"}, {"service", "web"}, {"address", "10.0.0.11"}});
  CHECK(a["error"] == "missing field 'weight'");
  a = f.call({{"cmd", "backend.set-weight"},
              {"service", "web"},
              {"address", "10.0.0.11"},
              {"weight", -1}});
  CHECK(a["error"] == "weight: must be 0..65535, got -1");
  a = f.call({{"cmd", "backend.set-weight"},
              {"service", "nope"},
              {"address", "10.0.0.11"},
              {"weight", 3}});
  CHECK(a["error"] == "service 'nope' does not exist");
  CHECK(f.publishes == 1);
}

TEST_CASE("service.add decodes like a config file") {
  fixture f;
  auto a = f.call({{"cmd", "service.add"},
                   {"service",
                    {{"name", "dns"},
                     {"vip", "192.0.2.53"},
                     {"port", 53},
                     {"proto", "udp"},
                     {"backends", {{{"address", "10.0.0.5"}, {"weight", 70000}}}}}}});
  CHECK(a["ok"] == false);
  CHECK(a["error"] == "service dns: backend 10.0.0.5:53: weight: must be 0..65535, got 70000");
  a = f.call({{"cmd", "service.add"},
              {"service", {{"name", "dns"}, {"vip", "192.0.2.53"}, {"port", 53}, {"color", 1}}}});
  CHECK(contains(a["error"], "service dns: color: unknown field"));
  CHECK(f.publishes == 1);
  a = f.call(
      {{"cmd", "service.add"},
       {"service", {{"name", "dns"}, {"vip", "192.0.2.53"}, {"port", 53}, {"proto", "udp"}}}});
  CHECK(a["ok"] == true);
  CHECK(a["generation"] == 2);
  CHECK(a["diff"][0] == "+ service dns udp 192.0.2.53:53 nat");
}

TEST_CASE("service.set merges fields; apply validates with the file name") {
  fixture f;
  auto a = f.call({{"cmd", "service.set"}, {"name", "web"}, {"fields", {{"mode", "dnat"}}}});
  CHECK(a["ok"] == true);
  CHECK(f.state.desired().services[0].cfg.mode == abi::fwd_mode::dnat);
  CHECK(f.state.desired().services[0].cfg.backends.size() == 1);

  a = f.call({{"cmd", "apply"},
              {"file", "new.yaml"},
              {"yaml", "services:\n  - {name: web, vip: 192.0.2.10, port: 99999}\n"}});
  CHECK(a["error"] == "new.yaml:2: service web: port: must be 1..65535, got 99999");
  a = f.call({{"cmd", "apply"},
              {"dry_run", true},
              {"yaml", "services:\n  - {name: web, vip: 192.0.2.10, port: 80, mode: dnat}\n"}});
  CHECK(a["ok"] == true);
  CHECK(a["diff"] == json{"- backend web 10.0.0.11:80"});
  CHECK(f.state.desired().services[0].cfg.backends.size() == 1);
  CHECK(f.publishes == 2);
}
