// sluice-controlplane: loads the config (or the state file of a previous run),
// adopts or creates the instance's shared memory, publishes, then serves the
// JSON API, the metrics endpoint and the heartbeat until SIGTERM.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <optional>
#include <sstream>
#include <string>

#include "api_handler.h"
#include "api_server.h"
#include "config_encode.h"
#include "config_load.h"
#include "ha_daemon.h"
#include "health_daemon.h"
#include "input_limits.h"
#include "instance_lock.h"
#include "log.h"
#include "metrics.h"
#include "metrics_ports.h"
#include "port_stats_cache.h"
#include "publisher.h"
#include "shm_atomic.h"
#include "shm_publish.h"
#include "shm_region.h"
#include "state.h"
#include "state_file.h"
#include "stats_reader.h"
#include "steer_hook.h"
#include "version.h"
#include "worker_watch.h"

namespace po = boost::program_options;
using namespace sluice;
using namespace sluice::cp;

namespace {

struct options {
  std::string config, instance, shm_path, socket, state_file, metrics = "127.0.0.1:9700";
  std::string log_format = "text";
  uint32_t ack_timeout_ms = 2000;
  uint32_t stall_ms = 1000;
  bool validate = false;
  bool allow_empty = false;
  std::vector<std::string> steer_nat_pool, steer_own;
  steer_hook_options steer;
  ha_options ha;
};

// Every message of this file and of the health checks goes through log.h;
// a "warning: " prefix sets the level.
void log(const std::string& msg) {
  if (msg.rfind("warning: ", 0) == 0)
    log_warning(msg.substr(9));
  else
    log_info(msg);
}

std::optional<options> parse(int argc, char** argv, int& exit_code) {
  options o;
  po::options_description d("usage: sluice-controlplane --config FILE [options]");
  d.add_options()("help,h", "this help")("config", po::value(&o.config)->value_name("FILE"),
                                         "YAML config (see docs/configuration.md)")(
      "instance", po::value(&o.instance)->value_name("NAME"),
      "instance name (overrides the config's `instance`)")(
      "shm-path", po::value(&o.shm_path)->value_name("PATH"),
      "shared-memory object (default /dev/hugepages/sluice-NAME or /dev/shm/sluice-NAME)")(
      "socket", po::value(&o.socket)->value_name("PATH"),
      "API socket (default /run/sluice/NAME.sock)")(
      "state-file", po::value(&o.state_file)->value_name("PATH"),
      "where live changes persist (default /var/lib/sluice/NAME.state.yaml)")(
      "metrics", po::value(&o.metrics)->value_name("ADDR:PORT"),
      "Prometheus endpoint, or 'off' (default 127.0.0.1:9700)")(
      "ack-timeout-ms", po::value(&o.ack_timeout_ms)->value_name("MS"),
      "how long a change waits for every worker to acknowledge (default 2000)")(
      "stall-ms", po::value(&o.stall_ms)->value_name("MS"),
      "a live worker whose heartbeat is older than this is reported stalled (default 1000)")(
      "validate", po::bool_switch(&o.validate), "only check the config file and exit")(
      "allow-empty", po::bool_switch(&o.allow_empty),
      "start even when the state file (or its absence) would publish zero services over a "
      "non-empty config or table")(
      "log-format", po::value(&o.log_format)->value_name("text|json"),
      "stderr log lines: text (timestamp level message; syslog prefix under systemd) or "
      "json (one object per line)")("version", "print the version and exit")(
      "steer-iface", po::value(&o.steer.iface)->value_name("IF"),
      "after every publication, fill the maps of vip_steer attached to IF")(
      "steer-nat-pool", po::value(&o.steer_nat_pool)->value_name("IP")->composing(),
      "the dataplane's NAT-pool addresses for vip_steer (default: keep the map's)")(
      "steer-own", po::value(&o.steer_own)->value_name("IP")->composing(),
      "the dataplane's own addresses for vip_steer (default: keep the map's)");
  add_ha_options(d, o.ha);
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(d).run(), vm);
    po::notify(vm);
    if (vm.count("version")) {
      std::printf("sluice-controlplane %s\n", SLUICE_VERSION);
      exit_code = 0;
      return std::nullopt;
    }
    if (vm.count("help")) {
      std::ostringstream s;
      s << d;
      std::printf("%s", s.str().c_str());
      exit_code = 0;
      return std::nullopt;
    }
  } catch (const po::error& e) {
    log_error(std::string(e.what()) + " (see --help)");
    exit_code = 2;
    return std::nullopt;
  }
  log_format lf;
  if (!parse_log_format(o.log_format, lf)) {
    log_error(fmt::format("--log-format: expected text or json, got '{}'", o.log_format));
    exit_code = 2;
    return std::nullopt;
  }
  log_init("sluice-controlplane", lf);
  for (auto [texts, out] :
       {std::pair{&o.steer_nat_pool, &o.steer.nat_pool}, std::pair{&o.steer_own, &o.steer.own}})
    for (const auto& t : *texts) {
      auto ip = parse_ip(t);
      if (!ip) {
        log_error(fmt::format("--steer-nat-pool/--steer-own: '{}' is not an IP address", t));
        exit_code = 2;
        return std::nullopt;
      }
      out->push_back(*ip);
    }
  if (auto h = finish_ha_options(o.ha); !h) {
    log(h.error_message());
    exit_code = 2;
    return std::nullopt;
  }
  if (!o.steer.iface.empty() && !steer_hook_available()) {
    log_error("--steer-iface: this build has no libbpf (bpf/ was not built)");
    exit_code = 2;
    return std::nullopt;
  }
  if (o.config.empty() && (o.validate || (o.instance.empty() && o.shm_path.empty()))) {
    log_error("--config FILE is required (or --instance NAME to start empty)");
    exit_code = 2;
    return std::nullopt;
  }
  return o;
}

// Services in the published table (0 when nothing was published yet).
uint32_t published_services(const shm_region& region) {
  const table_view v = current_view(region);
  if (!v.hdr)
    return 0;
  uint32_t n = 0;
  for (uint32_t i = 0; i < v.hdr->service_limit; ++i)
    n += (v.services[i].flags & sluice::abi::service_in_use) ? 1 : 0;
  return n;
}

// What to load at start: the state file of the previous run when it is sound,
// else the last good one (PATH.prev), else --config, loudly. Never silently
// zero services: a state file with none over a non-empty --config needs
// --allow-empty.
result<cp_config> choose_start_config(const options& o, const std::string& state_file,
                                      cp_config cfg, const sluice::abi::capacities& caps) {
  std::error_code ec;
  if (!std::filesystem::exists(state_file, ec))
    return cfg;
  const std::string inst = cfg.instance;
  auto s = load_state_file(state_file, caps);
  std::string source = state_file;
  if (!s) {
    log(fmt::format("WARNING: state file refused: {}", s.error_message()));
    const std::string refused = state_file + ".refused";
    if (::rename(state_file.c_str(), refused.c_str()) == 0)
      log(fmt::format("WARNING: kept the refused file as {} for inspection", refused));
    const std::string prev = previous_state_path(state_file);
    if (std::filesystem::exists(prev, ec)) {
      s = load_state_file(prev, caps);
      source = prev;
      if (!s)
        log(fmt::format("WARNING: previous state file refused too: {}", s.error_message()));
    }
  }
  if (!s) {
    if (o.config.empty() && !o.allow_empty)
      return make_error("no usable state file and no --config to fall back to: refusing to "
                        "start with zero services (give --config, or --allow-empty)");
    log(fmt::format("WARNING: falling back to {}: changes made through the API since it was "
                    "last applied are LOST; check the config before going on",
                    o.config.empty() ? "an empty config (--allow-empty)" : o.config));
    return cfg;
  }
  if (s->services.empty() && !cfg.services.empty() && !o.allow_empty)
    return make_error(fmt::format("state file {} holds no services but {} holds {}: refusing to "
                                  "start with zero services (remove the state file to use the "
                                  "config, or pass --allow-empty)",
                                  source, o.config, cfg.services.size()));
  log(fmt::format("state file {} found: it holds the live config of the previous run and wins "
                  "over {}",
                  source, o.config.empty() ? "the (absent) --config" : o.config));
  cfg = std::move(s.value());
  cfg.instance = inst;
  return cfg;
}

// SIGHUP: the config file again, with `sluicectl apply` semantics (validated
// whole, published all-or-nothing, persisted), logged either way.
void reload_config(const options& o, cp_state& state, const sluice::abi::capacities& caps) {
  if (o.config.empty()) {
    log("SIGHUP: no --config to reload; nothing changed");
    return;
  }
  auto c = load_config_file(o.config, caps);
  if (!c) {
    log(fmt::format("SIGHUP: {} is invalid, nothing changed:\n{}", o.config, c.error_message()));
    return;
  }
  if (c->instance.empty() || !o.instance.empty())
    c->instance = state.desired().instance;
  if (c->instance != state.desired().instance) {
    log(fmt::format("SIGHUP: {} names instance '{}', this is '{}'; nothing changed", o.config,
                    c->instance, state.desired().instance));
    return;
  }
  auto r = state.apply(std::move(c.value()));
  if (!r) {
    log(fmt::format("SIGHUP: reload of {} failed, nothing changed: {}", o.config,
                    r.error_message()));
    return;
  }
  log(fmt::format("SIGHUP: reloaded {}: generation {}, {} change(s){}", o.config, r->generation,
                  r->diff.size(), r->warning.empty() ? "" : "; warning: " + r->warning));
  for (const auto& d : r->diff)
    log("  " + d);
}

int run(const options& o) {
  const auto caps = sluice::abi::default_capacities;
  cp_config cfg;
  if (!o.config.empty()) {
    auto c = load_config_file(o.config, caps);
    if (!c) {
      std::fprintf(stderr, "%s\n", c.error_message().c_str());
      log_error(fmt::format("{}: invalid, nothing changed", o.config));
      return 1;
    }
    cfg = std::move(c.value());
  }
  if (!o.instance.empty())
    cfg.instance = o.instance;
  if (o.validate) {
    std::printf("%s: ok (%zu services)\n", o.config.c_str(), cfg.services.size());
    return 0;
  }
  const std::string shm_path =
      o.shm_path.empty() ? shm_region::default_path(cfg.instance) : o.shm_path;
  const std::string socket =
      o.socket.empty() ? fmt::format("/run/sluice/{}.sock", cfg.instance) : o.socket;
  const std::string state_file = o.state_file.empty()
                                     ? fmt::format("/var/lib/sluice/{}.state.yaml", cfg.instance)
                                     : o.state_file;

  auto lock = instance_lock::acquire(shm_path + ".lock");
  if (!lock) {
    log_error(fmt::format("instance '{}': {}", cfg.instance, lock.error_message()));
    return 1;
  }
  std::error_code ec;
  auto chosen = choose_start_config(o, state_file, cfg, caps);
  if (!chosen) {
    log_error(chosen.error_message());
    return 1;
  }
  cfg = std::move(chosen.value());
  if (!std::filesystem::exists(state_file, ec))
    std::filesystem::create_directories(std::filesystem::path(state_file).parent_path(), ec);
  auto region = shm_region::create_or_attach(shm_path, caps);
  if (!region) {
    log_error(fmt::format("{}: {}", shm_path, region.error_message()));
    return 1;
  }
  if (cfg.services.empty() && !o.allow_empty && published_services(region.value()) > 0) {
    log(fmt::format("refusing to start: {} publishes {} services and the config to load has "
                    "none; this would empty the load balancer (use --allow-empty if intended)",
                    shm_path, published_services(region.value())));
    return 1;
  }
  publisher pub(region.value());
  log(fmt::format("{} shared memory {} (generation {})", region->created() ? "created" : "adopted",
                  shm_path, pub.generation()));
  pub.heartbeat();

  publish_stats publishes;
  cp_state state(
      caps,
      with_steer_update(
          make_shm_publish(pub, std::chrono::milliseconds(o.ack_timeout_ms), publishes), o.steer,
          log),
      [&](const cp_config& c) { return write_file_atomic(state_file, seal_state(to_yaml(c))); });
  state.set_soft_writer(make_soft_writer(pub, publishes));
  state.set_generation(pub.generation());
  auto first = state.load(cfg);
  if (!first) {
    log_error(first.error_message());
    return 1;
  }
  if (!first->warning.empty())
    log("warning: " + first->warning);
  log(fmt::format("instance '{}': {} services published as generation {}", cfg.instance,
                  cfg.services.size(), first->generation));

  daemon_context ctx;
  ctx.state = &state;
  ctx.region = &region.value();
  ctx.pub = &pub;
  ctx.publishes = &publishes;
  ctx.shm_path = shm_path;
  ctx.socket_path = socket;
  ctx.state_file = state_file;
  ctx.stall_ms = o.stall_ms;
  health_daemon health(state, [](const std::string& m) { log(m); });
  if (auto h = health.start(); !h) {
    log_error("health checks: " + h.error_message());
    return 1;
  }
  ctx.annotate_backends = [&](const std::string& s, nlohmann::json& b) { health.annotate(s, b); };
  if (!o.steer.iface.empty())
    ctx.steer_counters = [iface = o.steer.iface] { return steer_counters(iface); };
  // Announces the NAT pool given for vip_steer too (docs/high-availability.md).
  ha_daemon ha(o.ha, cfg.instance, o.steer.nat_pool, [](const std::string& m) { log(m); });
  if (auto h = ha.start(); !h) {
    log(h.error_message());
    return 1;
  }
  ctx.extra_commands = [&](const std::string& cmd, const nlohmann::json& req) {
    return ha.handle(cmd, req, state, region.value(), pub);
  };
  // Port statistics for /metrics and `ports` come from a background query so a
  // dataplane that stops answering cannot stall the event loop.
  port_stats_cache port_stats(shm_path, std::chrono::milliseconds(500),
                              std::chrono::milliseconds(200));
  ctx.port_stats = [&] { return port_stats.get(); };
  api_handler api(ctx);

  server_hooks hooks;
  hooks.handle_line = [&](const std::string& line) { return api.handle_line(line); };
  hooks.request_peer = [&](int uid, int pid) { api.set_peer(uid, pid); };
  hooks.metrics = [&] {
    auto snap = read_counters(region.value(), pub.builder(), state.desired());
    const auto effective = state.effective(state.desired());
    metrics_input in;
    in.config = &state.desired();
    in.effective = &effective;
    in.counters = &snap;
    in.generation = pub.generation();
    in.publishes = &publishes;
    in.dataplane_alive = dataplane_alive(region.value());
    for (uint32_t w = 0; w < region->caps().max_workers; ++w)
      in.live_workers += load_acquire(region->worker_ack(w)->live) ? 1 : 0;
    in.lagging_workers = uint32_t(pub.lagging_workers(pub.generation()).size());
    in.uptime_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.started).count();
    nlohmann::json steer = ctx.steer_counters ? ctx.steer_counters() : nlohmann::json();
    return render_metrics(in) + health.metrics() +
           render_port_metrics(port_stats.get(), ctx.steer_counters ? &steer : nullptr) +
           ha.metrics() +
           render_worker_metrics(watch_workers(region.value(), monotonic_ns(), o.stall_ms));
  };
  hooks.log = log;
  hooks.reload = [&] { reload_config(o, state, caps); };
  stall_logger stalls(log);
  bool dp_was_alive = dataplane_alive(region.value());
  uint32_t steer_prog = 0, steer_ticks = 0;
  std::string steer_error;
  hooks.tick = [&] {
    pub.heartbeat();
    stalls.update(watch_workers(region.value(), monotonic_ns(), o.stall_ms));
    if (const bool alive = dataplane_alive(region.value()); alive != dp_was_alive) {
      log(alive ? "dataplane running"
                : fmt::format("dataplane pid {} is gone (or a zombie)",
                              load_relaxed(region->header()->procs.dp_pid)));
      dp_was_alive = alive;
    }
    health.tick(&region.value(), &pub.builder());
    ha.tick(state, region.value(), pub);
    // A restarted dataplane (hitless restart) attaches a new vip_steer with
    // empty maps: refill them within 200 ms.
    if (!o.steer.iface.empty() && ++steer_ticks % 4 == 0) {
      const uint32_t before = steer_prog;
      auto r = steer_refill_if_new(o.steer, state.effective(state.desired()), steer_prog);
      const std::string err = r ? std::string() : r.error_message();
      if (!err.empty() && err != steer_error)
        log(fmt::format("vip_steer on {} not refilled: {}", o.steer.iface, err));
      steer_error = err;
      if (r && *r && before != 0)
        log(fmt::format("vip_steer on {}: new program {} (dataplane restarted): maps refilled",
                        o.steer.iface, steer_prog));
    }
  };
  log(fmt::format("serving API on {}, metrics on {}", socket, o.metrics));
  server_options so;
  so.socket_path = socket;
  so.metrics_addr = o.metrics;
  so.tick_ms = 50; // health changes publish fast
  so.max_request_bytes = input_limits::max_request_bytes;
  auto served = serve(so, hooks);
  ha.shutdown(); // withdraw first, stop second
  if (!served) {
    log_error(served.error_message());
    return 1;
  }
  log("stopping; the dataplane keeps forwarding with the published tables");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  int code = 0;
  auto o = parse(argc, argv, code);
  if (!o)
    return code;
  return run(*o);
}
