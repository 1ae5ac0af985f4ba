#include "ha_daemon.h"

#include <fmt/format.h>

#include "shm_atomic.h"
#include "stats_reader.h"
#include "table_digest.h"

namespace po = boost::program_options;

namespace sluice::cp {

void add_ha_options(po::options_description& d, ha_options& o) {
  auto& b = o.bgp;
  d.add_options()("bgp-include", po::value(&b.include_file)->value_name("FILE"),
                  "announce VIPs by BGP: write this BIRD include file and reload BIRD")(
      "bird-socket", po::value(&b.bird_socket)->value_name("PATH"),
      "BIRD's control socket (default /run/bird/bird.ctl)")(
      "bgp-local-as", po::value(&b.local_as)->value_name("AS"),
      "our AS number (for --bgp-neighbor sessions and --bgp-prepend)")(
      "bgp-neighbor", po::value(&o.neighbor_texts)->value_name("ADDR,AS")->composing(),
      "generate a BGP session (with BFD) to this router; repeatable")(
      "bgp-med", po::value(&b.med)->value_name("N"),
      "MULTI_EXIT_DISC on our routes (higher = less preferred: a backup instance)")(
      "bgp-prepend", po::value(&b.prepend)->value_name("N"),
      "prepend our AS N more times (0..8; a backup instance)")(
      "bgp-community", po::value(&o.community_texts)->value_name("HI:LO")->composing(),
      "add this BGP community to our routes; repeatable")("no-bfd", po::bool_switch(&o.no_bfd),
                                                          "no BFD on the generated sessions")(
      "bfd-interval-ms", po::value(&b.bfd_interval_ms)->value_name("MS"),
      "BFD min rx/tx interval (default 100)")("bfd-multiplier",
                                              po::value(&b.bfd_multiplier)->value_name("N"),
                                              "BFD detection multiplier (default 3)")(
      "bgp-hold-time", po::value(&b.hold_time_s)->value_name("S"),
      "BGP hold time of the generated sessions (default 9)")(
      "heartbeat-max-age-ms", po::value(&b.heartbeat_max_age_ms)->value_name("MS"),
      "dataplane heartbeat older than this = not serving, withdraw (default 1000)")(
      "peer-listen", po::value(&o.peers.listen)->value_name("ADDR:PORT"),
      "exchange liveness and table digests with peers from this UDP address")(
      "peer", po::value(&o.peers.peers)->value_name("ADDR:PORT")->composing(),
      "a peer instance's --peer-listen address; repeatable")(
      "peer-interval-ms", po::value(&o.peers.interval_ms)->value_name("MS"),
      "how often we tell peers our state (default 200)")(
      "peer-dead-ms", po::value(&o.peers.dead_ms)->value_name("MS"),
      "a peer silent this long is down (default 1000)")(
      "flow-snapshot", po::value(&o.flow_snapshot)->value_name("PATH"),
      "the dataplane's --flow-snapshot file, for --restart-hold-ms")(
      "restart-hold-ms", po::value(&o.restart_hold_ms)->value_name("MS"),
      "keep announcing while the dataplane restarts: its flow snapshot is this fresh "
      "(default 0: withdraw at once)");
}

result<void> finish_ha_options(ha_options& o) {
  for (const auto& t : o.neighbor_texts) {
    auto n = parse_neighbor(t);
    if (!n)
      return n.err();
    o.bgp.neighbors.push_back(*n);
  }
  for (const auto& t : o.community_texts) {
    auto c = parse_community(t);
    if (!c)
      return c.err();
    o.bgp.communities.push_back(*c);
  }
  o.bgp.bfd = !o.no_bfd;
  if (o.restart_hold_ms > 60000)
    return make_error(fmt::format("--restart-hold-ms must be 0..60000, got {}", o.restart_hold_ms));
  if (o.restart_hold_ms > 0 && o.flow_snapshot.empty())
    return make_error("--restart-hold-ms needs --flow-snapshot (the dataplane's snapshot file)");
  if (o.peers.interval_ms < 10 || o.peers.interval_ms > 60000)
    return make_error(
        fmt::format("--peer-interval-ms must be 10..60000, got {}", o.peers.interval_ms));
  if (o.peers.dead_ms < 2 * o.peers.interval_ms)
    return make_error(fmt::format("--peer-dead-ms must be at least twice --peer-interval-ms ({}), "
                                  "got {}",
                                  2 * o.peers.interval_ms, o.peers.dead_ms));
  return validate_bgp_options(o.bgp);
}

ha_daemon::ha_daemon(ha_options o, std::string instance, std::vector<ip_addr> nat_pool, log_fn log)
    : opts_(std::move(o)), nat_pool_(std::move(nat_pool)), log_(log),
      bgp_(opts_.bgp, std::move(instance), log), peers_(opts_.peers),
      hold_(opts_.flow_snapshot, opts_.restart_hold_ms, log) {}

result<void> ha_daemon::start() {
  return peers_.start();
}

void ha_daemon::refresh(const cp_state& state, const shm_region& region, const publisher& pub) {
  serving_state s;
  check_dataplane(region, opts_.bgp.heartbeat_max_age_ms, s);
  hold_.apply(s, monotonic_ns());
  s.drained = drained_;
  if (s.dataplane && drained_)
    s.reason = "instance drained";
  serving_ = s;
  bgp_.update(state.desired(), state.effective(state.desired()), serving_, nat_pool_);
  const uint64_t g = load_acquire(region.header()->generation);
  if (g != digest_generation_ || digests_.size() != state.desired().services.size()) {
    digests_ = service_digests(region, pub.builder(), state.desired());
    digest_generation_ = g;
  }
}

void ha_daemon::tick(const cp_state& state, const shm_region& region, const publisher& pub) {
  if (!bgp_.enabled() && !peers_.enabled())
    return;
  refresh(state, region, pub);
  peers_.tick(int64_t(monotonic_ns()),
              {state.desired().instance, bgp_.enabled() ? serving_.serving() : false, digests_});
}

std::optional<nlohmann::json> ha_daemon::handle(const std::string& cmd, const nlohmann::json&,
                                                const cp_state& state, const shm_region& region,
                                                const publisher& pub) {
  if (cmd == "instance.drain" || cmd == "instance.undrain") {
    const bool was = drained_;
    drained_ = cmd == "instance.drain";
    if (was != drained_)
      log_(drained_ ? "instance drained: withdrawing every route"
                    : "instance undrained: announcing again where the service qualifies");
    refresh(state, region, pub); // the reload happens before the answer
    auto b = bgp_.status();
    return nlohmann::json{{"ok", true},
                          {"drained", drained_},
                          {"bgp_enabled", bgp_.enabled()},
                          {"routes", b["routes"]},
                          {"last_error", b["last_error"]}};
  }
  if (cmd == "bgp") {
    refresh(state, region, pub);
    auto b = bgp_.status();
    b["ok"] = true;
    return b;
  }
  if (cmd == "peers") {
    refresh(state, region, pub);
    auto p = peers_.status(digests_, int64_t(monotonic_ns()));
    p["ok"] = true;
    p["instance"] = state.desired().instance;
    p["serving"] = serving_.serving();
    return p;
  }
  return std::nullopt;
}

std::string ha_daemon::metrics() const {
  std::string o;
  if (bgp_.enabled()) {
    o += "# HELP sluice_instance_serving 1 while this instance may announce (dataplane live, not "
         "drained)\n# TYPE sluice_instance_serving gauge\n";
    o += fmt::format("sluice_instance_serving {}\n", serving_.serving() ? 1 : 0);
    o += "# HELP sluice_instance_drained 1 after sluicectl instance drain\n"
         "# TYPE sluice_instance_drained gauge\n";
    o += fmt::format("sluice_instance_drained {}\n", drained_ ? 1 : 0);
    o += "# HELP sluice_bgp_route_announced 1 while the prefix is announced\n"
         "# TYPE sluice_bgp_route_announced gauge\n";
    for (const auto& r : bgp_.routes())
      o += fmt::format("sluice_bgp_route_announced{{prefix=\"{}/{}\"}} {}\n", format_ip(r.prefix),
                       r.prefix.is_v4() ? 32 : 128, r.announced ? 1 : 0);
    o += "# HELP sluice_bgp_reloads_total BIRD reconfigurations done\n"
         "# TYPE sluice_bgp_reloads_total counter\n";
    o += fmt::format("sluice_bgp_reloads_total {}\n", bgp_.reloads());
    o += "# HELP sluice_bgp_reload_failures_total BIRD reconfigurations that failed\n"
         "# TYPE sluice_bgp_reload_failures_total counter\n";
    o += fmt::format("sluice_bgp_reload_failures_total {}\n", bgp_.reload_failures());
  }
  return o + peers_.metrics(digests_);
}

void ha_daemon::shutdown() {
  if (!bgp_.enabled())
    return;
  if (auto r = bgp_.withdraw_all(); !r)
    log_("BGP: could not withdraw on stop: " + r.error_message());
  else
    log_("BGP: every route withdrawn");
}

} // namespace sluice::cp
