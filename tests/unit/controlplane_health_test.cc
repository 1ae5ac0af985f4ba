// Active health checks: the rise/fall state machine (rise, fall, flapping),
// HTTP answer judging, the prober against real loopback sockets with a fake
// clock (a black-holed connect times out without sleeping), the manager's
// transitions and their log lines, slow start, passive ejection, the overlay
// in cp_state, and the config fields (decode, errors with lines, round trip).
#include <arpa/inet.h>
#include <catch2/catch_test_macros.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config_encode.h"
#include "config_load.h"
#include "health_http.h"
#include "health_manager.h"
#include "state.h"

using namespace sluice;
using namespace sluice::cp;

namespace {

constexpr abi::capacities caps{16, 64, 4096, 4};

struct fake_clock {
  int64_t now = 1'000'000'000;
  clock_fn fn() {
    return [this] { return now; };
  }
  void advance_ms(int64_t ms) { now += ms * 1'000'000; }
};

// A TCP listener on 127.0.0.1 with an ephemeral port.
struct listener {
  int fd = -1;
  uint16_t port = 0;
  explicit listener(int backlog) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, backlog);
    socklen_t l = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
    port = ntohs(a.sin_port);
  }
  ~listener() { ::close(fd); }
};

health_config tcp_check() {
  health_config h;
  h.kind = check_kind::tcp;
  h.interval_ms = 100;
  h.timeout_ms = 50;
  h.jitter_pct = 0;
  return h;
}

// Runs the prober until `n` outcomes arrived, advancing the fake clock by
// `step_ms` per round (bounded: at most 200 rounds).
std::vector<probe_outcome> run_until(prober& p, fake_clock& c, size_t n, int step_ms) {
  std::vector<probe_outcome> out;
  for (int i = 0; i < 200 && out.size() < n; ++i) {
    p.run_once(5, out);
    c.advance_ms(step_ms);
  }
  return out;
}

const std::string svc_yaml = R"(instance: t
limits: {maglev_size: 251}
services:
  - name: web
    vip: 10.0.0.1
    port: 80
    health: {check: http, path: /healthz, interval_ms: 100, timeout_ms: 50, rise: 2, fall: 3}
    backends:
      - address: 10.0.2.12
      - address: 10.0.2.13
        health: {check: tcp, fall: 1}
)";

} // namespace

TEST_CASE("fsm: fall consecutive failures take it down, rise successes bring it back") {
  health_fsm f(2, 3);
  CHECK(f.status() == health_status::up);
  CHECK_FALSE(f.record(false));
  CHECK_FALSE(f.record(false));
  CHECK(f.record(false));
  CHECK(f.status() == health_status::down);
  CHECK_FALSE(f.record(false));
  CHECK_FALSE(f.record(true));
  CHECK(f.record(true));
  CHECK(f.status() == health_status::up);
}

TEST_CASE("fsm: a flapping backend never completes a run and keeps its state") {
  health_fsm up(2, 2);
  health_fsm down(2, 2, health_status::down);
  for (int i = 0; i < 50; ++i) {
    CHECK_FALSE(up.record(i % 2 == 0));
    CHECK_FALSE(down.record(i % 2 == 0));
  }
  CHECK(up.status() == health_status::up);
  CHECK(down.status() == health_status::down);
  // a success resets the failure run
  health_fsm f(1, 3);
  f.record(false);
  f.record(false);
  f.record(true);
  f.record(false);
  f.record(false);
  CHECK(f.status() == health_status::up);
}

TEST_CASE("http verdicts") {
  health_config h;
  h.kind = check_kind::http;
  CHECK_FALSE(http_verdict("HTTP/1.1 20", h, false).has_value());
  CHECK(http_verdict("HTTP/1.1 200 OK\r\n", h, false)->ok);
  auto v = http_verdict("HTTP/1.0 503 Service Unavailable\r\n\r\n", h, false);
  CHECK_FALSE(v->ok);
  CHECK(v->reason == "http status 503");
  CHECK_FALSE(http_verdict("SSH-2.0-OpenSSH\r\n", h, false)->ok);
  CHECK(http_verdict("", h, true)->reason == "http: empty answer");
  h.body_contains = "alive";
  CHECK_FALSE(http_verdict("HTTP/1.1 200 OK\r\n\r\nali", h, false).has_value());
  CHECK(http_verdict("HTTP/1.1 200 OK\r\n\r\nalive", h, false)->ok);
  CHECK(http_verdict("HTTP/1.1 200 OK\r\n\r\ndead", h, true)->reason ==
        "http body does not contain 'alive'");
  h.status_min = h.status_max = 204;
  CHECK_FALSE(http_verdict("HTTP/1.1 200 OK\r\n\r\nalive", h, true)->ok);
}

TEST_CASE("prober: tcp connect ok, refused, and a black-holed SYN times out on the fake clock") {
  fake_clock clk;
  prober p(clk.fn());
  REQUIRE(p.init());
  listener ok(16);
  // A listener whose accept queue is full drops further SYNs: connect hangs.
  listener full(0);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(full.port);
    ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
    fillers.push_back(c);
  }
  uint16_t closed_port;
  {
    listener gone(1);
    closed_port = gone.port;
  }
  const ip_addr lo = *parse_ip("127.0.0.1");
  p.set_targets({{1, lo, ok.port, tcp_check()},
                 {2, lo, closed_port, tcp_check()},
                 {3, lo, full.port, tcp_check()}});
  auto out = run_until(p, clk, 3, 10);
  for (int c : fillers)
    ::close(c);
  REQUIRE(out.size() >= 3);
  std::map<uint32_t, probe_outcome> by;
  for (auto& o : out)
    by.try_emplace(o.id, o);
  CHECK(by[1].ok);
  CHECK(by[1].reason == "tcp connect ok");
  CHECK_FALSE(by[2].ok);
  CHECK(by[2].reason == "tcp connect: Connection refused");
  CHECK_FALSE(by[3].ok);
  CHECK(by[3].reason == "tcp connect timeout (50 ms)");
  CHECK(by[3].latency_us >= 50000);
}

TEST_CASE("prober: checks repeat every interval and never overlap") {
  fake_clock clk;
  prober p(clk.fn());
  REQUIRE(p.init());
  listener ok(64);
  p.set_targets({{7, *parse_ip("127.0.0.1"), ok.port, tcp_check()}});
  std::vector<probe_outcome> out;
  for (int i = 0; i < 100; ++i) { // 1 s of fake time in 10 ms steps
    p.run_once(5, out);
    CHECK(p.in_flight() <= 1);
    clk.advance_ms(10);
  }
  CHECK(out.size() >= 9);
  CHECK(out.size() <= 11);
}

TEST_CASE("manager: transitions are logged with the reason, rtt hints are sparing") {
  fake_clock clk;
  std::vector<std::string> logs;
  health_manager m([&](const std::string& l) { logs.push_back(l); }, clk.fn());
  auto cfg = load_config_text(svc_yaml, "t.yaml", caps);
  REQUIRE(cfg);
  m.configure(cfg.value());
  m.reconfigure();
  auto ts = m.targets();
  REQUIRE(ts.size() == 2);
  const uint32_t web12 = ts[0].addr == *parse_ip("10.0.2.12") ? ts[0].id : ts[1].id;
  CHECK(ts[0].cfg.kind != ts[1].cfg.kind); // the per-backend override
  auto fail = [&](uint32_t id) {
    m.process({{id, false, "http status 503", 900, clk.now}});
    clk.advance_ms(100);
  };
  auto pass = [&](uint32_t id, uint32_t us) {
    m.process({{id, true, "http status 200", us, clk.now}});
    clk.advance_ms(100);
  };
  pass(web12, 1000);
  auto u = m.take_updates();
  REQUIRE(u.size() == 1); // first rtt hint
  CHECK(u[0].value.rtt_us == 1000);
  for (int i = 0; i < 20; ++i)
    pass(web12, 1100); // within 20 %: no update
  CHECK(m.take_updates().empty());
  fail(web12);
  fail(web12);
  CHECK(m.take_updates().empty());
  fail(web12);
  u = m.take_updates();
  REQUIRE(u.size() == 1);
  CHECK(u[0].key == "web 10.0.2.12:80");
  CHECK(u[0].value.down);
  CHECK(u[0].reason == "backend 10.0.2.12:80 down: http status 503 (3/3), service web");
  CHECK(logs.back() == u[0].reason);
  pass(web12, 1000);
  pass(web12, 1000);
  u = m.take_updates();
  REQUIRE(u.size() == 1);
  CHECK_FALSE(u[0].value.down);
  CHECK(u[0].reason == "backend 10.0.2.12:80 up: http status 200 (2/2), service web");
  auto snap = m.snapshot();
  CHECK(snap["web 10.0.2.12:80"].last_result == "http status 200");
  CHECK(snap["web 10.0.2.12:80"].transitions == 2);
  CHECK(snap["web 10.0.2.12:80"].checks == 26);
}

TEST_CASE("manager: slow start ramps the weight in steps after a backend comes up") {
  fake_clock clk;
  health_manager m(nullptr, clk.fn());
  std::string y = svc_yaml;
  y.replace(y.find("rise: 2, fall: 3}"), 17, "rise: 1, fall: 1, slow_start_s: 1}");
  auto cfg = load_config_text(y, "t.yaml", caps);
  REQUIRE(cfg);
  m.configure(cfg.value());
  m.reconfigure();
  uint32_t id = m.targets()[0].id;
  m.process({{id, false, "tcp connect timeout (50 ms)", 50000, clk.now}});
  m.process({{id, true, "http status 200", 0, clk.now}});
  auto u = m.take_updates();
  REQUIRE(u.size() == 3); // down, up at 10 %, the first rtt hint
  CHECK(u[1].value.weight_pct == 10);
  CHECK_FALSE(u[1].value.down);
  std::vector<int> steps;
  for (int i = 0; i < 12; ++i) {
    clk.advance_ms(100);
    m.ramp();
    for (auto& x : m.take_updates())
      steps.push_back(x.value.weight_pct);
  }
  REQUIRE(!steps.empty());
  CHECK(steps.back() == 100);
  CHECK(steps.size() >= 5);
}

TEST_CASE("manager: passive ejection above the threshold, re-admission after back-off") {
  fake_clock clk;
  std::vector<std::string> logs;
  health_manager m([&](const std::string& l) { logs.push_back(l); }, clk.fn());
  std::string y = svc_yaml;
  y.replace(y.find("fall: 3}"), 8, "fall: 3, passive_threshold_pct: 20, passive_min_flows: 10}");
  auto cfg = load_config_text(y, "t.yaml", caps);
  REQUIRE(cfg);
  m.configure(cfg.value());
  m.reconfigure();
  counter_snapshot s;
  s.backends = {{abi::backend_counters{}, abi::backend_counters{}}};
  m.observe_counters(cfg.value(), s); // baseline
  s.backends[0][0].new_flows = 40;
  s.backends[0][0].syn_unanswered = 4; // 10 %: fine
  m.observe_counters(cfg.value(), s);
  CHECK(m.take_updates().empty());
  s.backends[0][0].new_flows = 80;
  s.backends[0][0].syn_unanswered = 20; // 16/40 = 40 %
  m.observe_counters(cfg.value(), s);
  auto u = m.take_updates();
  REQUIRE(u.size() == 1);
  CHECK(u[0].value.down);
  CHECK(u[0].reason.find("passive, 16/40 new flows failed") != std::string::npos);
  m.ramp(); // back-off (1 s) not over
  CHECK(m.take_updates().empty());
  clk.advance_ms(1001);
  m.ramp();
  u = m.take_updates();
  REQUIRE(u.size() == 1);
  CHECK_FALSE(u[0].value.down);
}

TEST_CASE("cp_state: the overlay is published, not persisted") {
  std::vector<std::vector<service_config>> published;
  int persisted = 0;
  uint64_t gen = 0;
  cp_state st(
      caps,
      [&](const std::vector<service_config>& s) -> result<publish_outcome> {
        published.push_back(s);
        return publish_outcome{++gen, ""};
      },
      [&](const cp_config&) -> result<void> {
        ++persisted;
        return {};
      });
  auto cfg = load_config_text(svc_yaml, "t.yaml", caps);
  REQUIRE(cfg);
  REQUIRE(st.load(cfg.value()));
  CHECK(persisted == 1);
  backend_overlay down;
  down.down = true;
  down.rtt_us = 700;
  auto r = st.set_health({{"web 10.0.2.12:80", down, "backend 10.0.2.12:80 down: x"}});
  REQUIRE(r);
  CHECK(persisted == 1);
  REQUIRE(published.size() == 2);
  CHECK(published.back()[0].backends[0].state == abi::backend_state::down);
  CHECK(published.back()[0].backends[0].rtt_hint_us == 700);
  CHECK(published.back()[0].backends[1].state == abi::backend_state::up);
  CHECK(st.desired().services[0].cfg.backends[0].state == abi::backend_state::up);
  // the same overlay again publishes nothing
  REQUIRE(st.set_health({{"web 10.0.2.12:80", down, ""}}));
  CHECK(published.size() == 2);
  // a drained backend stays drained whatever the checks say; slow start scales weights
  REQUIRE(st.set_weight("web", {*parse_ip("10.0.2.13"), 0}, 50));
  backend_overlay ramp;
  ramp.weight_pct = 10;
  REQUIRE(st.set_health({{"web 10.0.2.13:80", ramp, ""}}));
  CHECK(published.back()[0].backends[1].weight == 5);
  CHECK(published.back()[0].backends[0].state == abi::backend_state::down);
}

TEST_CASE("config: health fields decode, refuse bad values with lines, and round-trip") {
  auto cfg = load_config_text(svc_yaml, "t.yaml", caps);
  REQUIRE(cfg);
  const auto& s = cfg->services[0];
  CHECK(s.health.kind == check_kind::http);
  CHECK(s.health.path == "/healthz");
  REQUIRE(s.backend_health.count("10.0.2.13:80"));
  CHECK(s.backend_health.at("10.0.2.13:80").kind == check_kind::tcp);
  CHECK(s.backend_health.at("10.0.2.13:80").fall == 1);
  CHECK(s.backend_health.at("10.0.2.13:80").interval_ms == 100); // inherited
  auto again = load_config_text(to_yaml(cfg.value()), "state.yaml", caps);
  REQUIRE(again);
  CHECK(again->services[0].health == s.health);
  CHECK(again->services[0].backend_health == s.backend_health);

  std::string y = svc_yaml;
  y.replace(y.find("rise: 2"), 7, "rise: 0");
  auto bad = load_config_text(y, "t.yaml", caps);
  REQUIRE_FALSE(bad);
  CHECK(bad.error_message() == "t.yaml:7: service web: health.rise: must be 1..100, got 0");
  y = svc_yaml;
  y.replace(y.find("check: tcp"), 10, "check: icmp");
  bad = load_config_text(y, "t.yaml", caps);
  REQUIRE_FALSE(bad);
  CHECK(bad.error_message() == "t.yaml:11: service web: backend 10.0.2.13:80: health.check: must "
                               "be one of none, tcp, http, udp, "
                               "got 'icmp'");
  y = svc_yaml;
  y.replace(y.find("path: /healthz"), 14, "path: healthz");
  bad = load_config_text(y, "t.yaml", caps);
  REQUIRE_FALSE(bad);
  CHECK(bad.error_message().find("t.yaml:7: service web: health.path: must start with '/'") == 0);
}

TEST_CASE("manager: turning checks off brings a down backend back; a removed one is cleared") {
  fake_clock clk;
  health_manager m(nullptr, clk.fn());
  auto cfg = load_config_text(svc_yaml, "t.yaml", caps);
  REQUIRE(cfg);
  m.configure(cfg.value());
  m.reconfigure();
  uint32_t id = 0;
  for (const auto& t : m.targets())
    if (t.addr == *parse_ip("10.0.2.12"))
      id = t.id;
  for (int i = 0; i < 3; ++i)
    m.process({{id, false, "http status 500", 100, clk.now}});
  REQUIRE(m.take_updates().size() == 1);
  auto off = cfg.value();
  off.services[0].health.kind = check_kind::none;
  m.configure(off);
  m.reconfigure();
  auto u = m.take_updates();
  REQUIRE(u.size() == 1);
  CHECK_FALSE(u[0].value.down);
  CHECK(u[0].reason == "backend 10.0.2.12:80 up: checks disabled, service web");
  CHECK(m.snapshot()["web 10.0.2.12:80"].status == health_status::up);
  CHECK(m.targets().size() == 1); // 10.0.2.13 keeps its own tcp check
  // a removed backend whose overlay is not the default is cleared
  auto on = cfg.value();
  m.configure(on);
  m.reconfigure();
  for (int i = 0; i < 3; ++i)
    m.process({{m.targets()[0].id, false, "http status 500", 100, clk.now}});
  m.take_updates();
  auto gone = on;
  gone.services[0].cfg.backends.erase(gone.services[0].cfg.backends.begin());
  m.configure(gone);
  m.reconfigure();
  u = m.take_updates();
  REQUIRE(u.size() == 1);
  CHECK(u[0].key == "web 10.0.2.12:80");
  CHECK(u[0].value == backend_overlay{});
}
