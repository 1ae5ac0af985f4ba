// cp_state transactions: every change validates, publishes, then commits and
// persists; a refused change (invalid, failed publish) changes nothing. Also
// against real shared memory with a simulated worker (table_reader): a weight
// change is acknowledged and visible, and a restarted control plane adopts the
// tables and continues the generation.
#include <atomic>
#include <catch2/catch_test_macros.hpp>
#include <thread>

#include "config_encode.h"
#include "config_load.h"
#include "publisher.h"
#include "shm_atomic.h"
#include "shm_publish.h"
#include "state.h"
#include "temp_shm.h"

using namespace sluice;
using namespace sluice::cp;
using namespace std::chrono_literals;
using sluice::test::contains;
using sluice::test::temp_shm_path;

namespace {

constexpr abi::capacities caps{16, 64, 4096, 4};

struct fake_world {
  std::vector<std::vector<service_config>> published;
  std::vector<cp_config> persisted;
  bool fail_publish = false;
  bool lagging = false;
  uint64_t gen = 0;

  cp_state make() {
    return cp_state(
        caps,
        [this](const std::vector<service_config>& s) -> result<publish_outcome> {
          if (fail_publish)
            return make_error("previous generation not acknowledged");
          published.push_back(s);
          return publish_outcome{++gen, lagging ? "worker 1 has not acknowledged" : ""};
        },
        [this](const cp_config& c) -> result<void> {
          persisted.push_back(c);
          return {};
        });
  }
};

cp_config base() {
  auto r = load_config_text(R"(instance: t
limits: {maglev_size: 97}
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    mode: dsr-ipip
    backends:
      - {address: 10.0.0.11}
      - {address: 10.0.0.12, weight: 2}
)",
                            "t", caps);
  REQUIRE(r.ok());
  return r.value();
}

backend_ref ref(const char* a, uint16_t port = 0) {
  return {*parse_ip(a), port};
}

} // namespace

TEST_CASE("load publishes, commits and persists") {
  fake_world w;
  auto st = w.make();
  auto r = st.load(base());
  REQUIRE(r.ok());
  CHECK(r->generation == 1);
  CHECK(w.published.size() == 1);
  CHECK(w.published[0][0].maglev_size == 97);
  REQUIRE(w.persisted.size() == 1);
  CHECK(st.desired().services.size() == 1);
}

TEST_CASE("set-weight, drain, undrain change one field each") {
  fake_world w;
  auto st = w.make();
  REQUIRE(st.load(base()).ok());
  auto r = st.set_weight("web", ref("10.0.0.11"), 5);
  REQUIRE(r.ok());
  CHECK(r->generation == 2);
  REQUIRE(r->diff.size() == 1);
  CHECK(r->diff[0] == "~ backend web 10.0.0.11:80: weight 1 -> 5");
  CHECK(w.published.back()[0].backends[0].weight == 5);
  CHECK(w.persisted.back().services[0].cfg.backends[0].weight == 5);
  REQUIRE(st.drain("web", ref("10.0.0.12", 80)).ok());
  CHECK(st.desired().services[0].cfg.backends[1].state == abi::backend_state::draining);
  REQUIRE(st.undrain("web", ref("10.0.0.12")).ok());
  CHECK(st.desired().services[0].cfg.backends[1].state == abi::backend_state::up);
  CHECK(w.published.size() == 4);
}

TEST_CASE("refused changes leave everything as it was") {
  fake_world w;
  auto st = w.make();
  REQUIRE(st.load(base()).ok());
  const std::string before = to_yaml(st.desired());

  auto r = st.set_weight("nope", ref("10.0.0.11"), 5);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error_message() == "service 'nope' does not exist");
  r = st.set_weight("web", ref("10.0.0.99"), 5);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error_message() == "service 'web' has no backend 10.0.0.99");
  r = st.add_backend("web", backend_config{*parse_ip("10.0.0.11"), 80, 1});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error_message() == "service 'web' already has backend 10.0.0.11:80");

  named_service dup = st.desired().services[0];
  dup.name = "web2"; // same VIP/port/proto
  r = st.add_service(dup);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error_message() ==
        "service web2: duplicate service tcp 192.0.2.10:80 (also service 'web')");

  w.fail_publish = true;
  r = st.set_weight("web", ref("10.0.0.11"), 9);
  REQUIRE_FALSE(r.ok());
  CHECK(contains(r.error_message(), "publish failed, nothing changed"));

  CHECK(to_yaml(st.desired()) == before);
  CHECK(w.published.size() == 1);
  CHECK(w.persisted.size() == 1);
  CHECK(st.generation() == 1);
}

TEST_CASE("an unacknowledged publication is committed with a warning") {
  fake_world w;
  auto st = w.make();
  REQUIRE(st.load(base()).ok());
  w.lagging = true;
  auto r = st.set_weight("web", ref("10.0.0.11"), 4);
  REQUIRE(r.ok());
  CHECK(r->warning == "worker 1 has not acknowledged");
  CHECK(st.desired().services[0].cfg.backends[0].weight == 4);
  CHECK(w.persisted.size() == 2);
}

TEST_CASE("apply: dry run changes nothing, a no-op publishes nothing") {
  fake_world w;
  auto st = w.make();
  REQUIRE(st.load(base()).ok());
  cp_config next = base();
  next.services[0].cfg.backends.pop_back();
  next.services[0].cfg.mode = abi::fwd_mode::dsr_gue;
  auto r = st.apply(next, true);
  REQUIRE(r.ok());
  CHECK(r->diff == std::vector<std::string>{"~ service web: mode dsr-ipip -> dsr-gue",
                                            "- backend web 10.0.0.12:80"});
  CHECK(w.published.size() == 1);
  CHECK(st.desired().services[0].cfg.backends.size() == 2);

  r = st.apply(base());
  REQUIRE(r.ok());
  CHECK(r->diff.empty());
  CHECK(w.published.size() == 1);

  cp_config other = base();
  other.instance = "x";
  r = st.apply(other);
  REQUIRE_FALSE(r.ok());
  CHECK(contains(r.error_message(), "cannot change the instance"));
}

TEST_CASE("real shared memory: a worker acknowledges a weight change; restart adopts") {
  temp_shm_path path("cpstate");
  auto region = shm_region::create_or_attach(path.path, caps);
  REQUIRE(region.ok());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> seen_weight{0};
  std::thread worker([&] {
    table_reader reader(region.value(), 0);
    while (!stop) {
      const auto& v = reader.refresh();
      if (v.hdr && v.hdr->backend_limit > 0)
        seen_weight = v.backends[0].weight;
      std::this_thread::sleep_for(100us);
    }
  });
  // The publisher only waits for live workers of a live dataplane: pose as
  // one, and let the worker come up first.
  store_release(region->header()->procs.dp_pid, int32_t(::getpid()));
  for (int i = 0; i < 2000 && !load_acquire(region->worker_ack(0)->live); ++i)
    std::this_thread::sleep_for(1ms);
  REQUIRE(load_acquire(region->worker_ack(0)->live) == 1);

  uint64_t gen_before_restart = 0;
  {
    publisher pub(region.value());
    publish_stats ps;
    cp_state st(caps, make_shm_publish(pub, 2000ms, ps), nullptr);
    REQUIRE(st.load(base()).ok());
    auto r = st.set_weight("web", ref("10.0.0.11"), 7);
    REQUIRE(r.ok());
    CHECK(r->warning.empty());
    CHECK(pub.lagging_workers(r->generation).empty());
    CHECK(load_acquire(region->worker_ack(0)->acked_generation) == r->generation);
    gen_before_restart = r->generation;
    CHECK(ps.count == 2);
  }
  // Control plane gone: the tables stay.
  CHECK(load_acquire(region->header()->generation) == gen_before_restart);
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (seen_weight != 7 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  CHECK(seen_weight == 7);
  {
    publisher pub(region.value()); // adopts slots and incarnations
    auto slot_before =
        pub.builder().backend(key_of(base().services[0].cfg, base().services[0].cfg.backends[0]));
    REQUIRE(slot_before);
    publish_stats ps;
    cp_state st(caps, make_shm_publish(pub, 2000ms, ps), nullptr);
    st.set_generation(pub.generation());
    cp_config c = base();
    c.services[0].cfg.backends[0].weight = 7;
    auto r = st.load(c);
    REQUIRE(r.ok());
    CHECK(r->generation == gen_before_restart + 1);
    auto slot_after =
        pub.builder().backend(key_of(c.services[0].cfg, c.services[0].cfg.backends[0]));
    REQUIRE(slot_after);
    CHECK(slot_after->slot == slot_before->slot);
    CHECK(slot_after->incarnation == slot_before->incarnation);
  }
  stop = true;
  worker.join();
}

TEST_CASE("health hints and slow-start steps go to the soft-state array, not a publication") {
  fake_world w;
  cp_state st = w.make();
  std::vector<std::vector<service_config>> soft;
  st.set_soft_writer([&](const std::vector<service_config>& t) { soft.push_back(t); });
  cp_config c = base();
  c.services[0].cfg.scheduler = abi::scheduler_kind::least_response_time;
  REQUIRE(st.load(c));
  REQUIRE(w.published.size() == 1);
  REQUIRE(soft.size() == 1); // every publication refreshes the soft words
  const uint64_t gen = st.generation();
  const std::string key = overlay_key("web", *parse_ip("10.0.0.11"), 80);

  backend_overlay o;
  o.rtt_us = 1234;
  REQUIRE(st.set_health({{key, o, ""}}));
  CHECK(w.published.size() == 1);
  CHECK(st.generation() == gen);
  REQUIRE(soft.size() == 2);
  CHECK(soft.back()[0].backends[0].rtt_hint_us == 1234);

  o.weight_pct = 10; // slow start, a scheduler that reads weights per decision
  const std::string key2 = overlay_key("web", *parse_ip("10.0.0.12"), 80); // weight 2
  REQUIRE(st.set_health({{key2, o, ""}}));
  CHECK(w.published.size() == 1);
  REQUIRE(soft.size() == 3);
  CHECK(soft.back()[0].backends[1].weight == 1);

  o.down = true; // eligibility changes: a publication
  REQUIRE(st.set_health({{key2, o, ""}}));
  CHECK(w.published.size() == 2);
  CHECK(st.generation() == gen + 1);

  // Maglev bakes weights into its lookup table: a slow-start step publishes.
  cp_config m = base();
  fake_world w2;
  cp_state st2 = w2.make();
  st2.set_soft_writer([&](const std::vector<service_config>& t) { soft.push_back(t); });
  REQUIRE(st2.load(m));
  backend_overlay slow;
  slow.weight_pct = 10;
  REQUIRE(st2.set_health({{key2, slow, ""}}));
  CHECK(w2.published.size() == 2);
  backend_overlay hint;
  hint.rtt_us = 99; // ... but a hint alone does not
  hint.weight_pct = 10;
  REQUIRE(st2.set_health({{key2, hint, ""}}));
  CHECK(w2.published.size() == 2);
}
