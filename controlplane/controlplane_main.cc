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
#include "instance_lock.h"
#include "metrics.h"
#include "publisher.h"
#include "shm_atomic.h"
#include "shm_publish.h"
#include "shm_region.h"
#include "state.h"
#include "state_file.h"
#include "stats_reader.h"
#include "steer_hook.h"

namespace po = boost::program_options;
using namespace sluice;
using namespace sluice::cp;

namespace {

struct options {
  std::string config, instance, shm_path, socket, state_file, metrics = "127.0.0.1:9700";
  uint32_t ack_timeout_ms = 2000;
  bool validate = false;
  std::vector<std::string> steer_nat_pool, steer_own;
  steer_hook_options steer;
  ha_options ha;
};

void log(const std::string& msg) {
  std::fprintf(stderr, "sluice-controlplane: %s\n", msg.c_str());
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
      "validate", po::bool_switch(&o.validate), "only check the config file and exit")(
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
    if (vm.count("help")) {
      std::ostringstream s;
      s << d;
      std::printf("%s", s.str().c_str());
      exit_code = 0;
      return std::nullopt;
    }
  } catch (const po::error& e) {
    log(std::string(e.what()) + " (see --help)");
    exit_code = 2;
    return std::nullopt;
  }
  for (auto [texts, out] :
       {std::pair{&o.steer_nat_pool, &o.steer.nat_pool}, std::pair{&o.steer_own, &o.steer.own}})
    for (const auto& t : *texts) {
      auto ip = parse_ip(t);
      if (!ip) {
        log(fmt::format("--steer-nat-pool/--steer-own: '{}' is not an IP address", t));
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
    log("--steer-iface: this build has no libbpf (bpf/ was not built)");
    exit_code = 2;
    return std::nullopt;
  }
  if (o.config.empty() && (o.validate || (o.instance.empty() && o.shm_path.empty()))) {
    log("--config FILE is required (or --instance NAME to start empty)");
    exit_code = 2;
    return std::nullopt;
  }
  return o;
}

int run(const options& o) {
  const auto caps = sluice::abi::default_capacities;
  cp_config cfg;
  if (!o.config.empty()) {
    auto c = load_config_file(o.config, caps);
    if (!c) {
      std::fprintf(stderr, "%s\n", c.error_message().c_str());
      log(fmt::format("{}: invalid, nothing changed", o.config));
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
    log(fmt::format("instance '{}': {}", cfg.instance, lock.error_message()));
    return 1;
  }
  std::error_code ec;
  if (std::filesystem::exists(state_file, ec)) {
    auto s = load_config_file(state_file, caps);
    if (!s) {
      std::fprintf(stderr, "%s\n", s.error_message().c_str());
      log(fmt::format("state file {} is invalid; fix or remove it", state_file));
      return 1;
    }
    log(fmt::format("state file {} found: it holds the live config of the previous run and wins "
                    "over {}",
                    state_file, o.config.empty() ? "the (absent) --config" : o.config));
    const std::string inst = cfg.instance;
    cfg = std::move(s.value());
    cfg.instance = inst;
  } else {
    std::filesystem::create_directories(std::filesystem::path(state_file).parent_path(), ec);
  }

  auto region = shm_region::create_or_attach(shm_path, caps);
  if (!region) {
    log(fmt::format("{}: {}", shm_path, region.error_message()));
    return 1;
  }
  publisher pub(region.value());
  log(fmt::format("{} shared memory {} (generation {})", region->created() ? "created" : "adopted",
                  shm_path, pub.generation()));
  pub.heartbeat();

  publish_stats publishes;
  cp_state state(caps,
                 with_steer_update(
                     make_shm_publish(pub, std::chrono::milliseconds(o.ack_timeout_ms), publishes),
                     o.steer, log),
                 [&](const cp_config& c) { return write_file_atomic(state_file, to_yaml(c)); });
  state.set_generation(pub.generation());
  auto first = state.load(cfg);
  if (!first) {
    log(first.error_message());
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
  health_daemon health(state, [](const std::string& m) { log(m); });
  if (auto h = health.start(); !h) {
    log("health checks: " + h.error_message());
    return 1;
  }
  ctx.annotate_backends = [&](const std::string& s, nlohmann::json& b) { health.annotate(s, b); };
  // Announces the NAT pool given for vip_steer too (docs/high-availability.md).
  ha_daemon ha(o.ha, cfg.instance, o.steer.nat_pool, [](const std::string& m) { log(m); });
  if (auto h = ha.start(); !h) {
    log(h.error_message());
    return 1;
  }
  ctx.extra_commands = [&](const std::string& cmd, const nlohmann::json& req) {
    return ha.handle(cmd, req, state, region.value(), pub);
  };
  api_handler api(ctx);

  server_hooks hooks;
  hooks.handle_line = [&](const std::string& line) { return api.handle_line(line); };
  hooks.metrics = [&] {
    auto snap = read_counters(region.value(), pub.builder(), state.desired());
    metrics_input in;
    in.config = &state.desired();
    in.counters = &snap;
    in.generation = pub.generation();
    in.publishes = &publishes;
    in.dataplane_alive = dataplane_alive(region.value());
    for (uint32_t w = 0; w < region->caps().max_workers; ++w)
      in.live_workers += load_acquire(region->worker_ack(w)->live) ? 1 : 0;
    in.lagging_workers = uint32_t(pub.lagging_workers(pub.generation()).size());
    in.uptime_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.started).count();
    return render_metrics(in) + health.metrics() + ha.metrics();
  };
  hooks.tick = [&] {
    pub.heartbeat();
    health.tick(&region.value(), &pub.builder());
    ha.tick(state, region.value(), pub);
  };
  log(fmt::format("serving API on {}, metrics on {}", socket, o.metrics));
  auto served = serve({socket, o.metrics, 50}, hooks); // 50 ms ticks: health changes publish fast
  ha.shutdown();                                       // withdraw first, stop second
  if (!served) {
    log(served.error_message());
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
