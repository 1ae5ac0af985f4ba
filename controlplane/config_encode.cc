#include "config_encode.h"

#include <fmt/format.h>

#include "ip_addr.h"
#include "scheduler_names.h"

namespace sluice::cp {

namespace {

// Strings in double quotes with JSON escapes, which YAML reads back verbatim.
std::string quoted(const std::string& v) {
  return nlohmann::json(v).dump();
}

// "syn: 30, established: 900, ..." in flow_timeout_fields order.
std::string timeouts_yaml(const flow_timeouts& t) {
  std::string o;
  for (const auto& tf : flow_timeout_fields)
    o += fmt::format("{}{}: {}", o.empty() ? "" : ", ", tf.name, t.*tf.member);
  return o;
}

nlohmann::json timeouts_json(const flow_timeouts& t) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& tf : flow_timeout_fields)
    j[tf.name] = t.*tf.member;
  return j;
}

std::string health_yaml(const health_config& h) {
  return fmt::format(
      "{{check: {}, interval_ms: {}, timeout_ms: {}, rise: {}, fall: {}, "
      "jitter_pct: {}, port: {}, {}path: {}, host: {}, status_min: {}, "
      "status_max: {}, body_contains: {}, send: {}, expect: {}, slow_start_s: {}, "
      "passive_threshold_pct: {}, passive_min_flows: {}}}",
      check_kind_name(h.kind), h.interval_ms, h.timeout_ms, h.rise, h.fall, h.jitter_pct, h.port,
      h.source ? fmt::format("source: \"{}\", ", format_ip(*h.source)) : "", quoted(h.path),
      quoted(h.host), h.status_min, h.status_max, quoted(h.body_contains), quoted(h.send),
      quoted(h.expect), h.slow_start_s, h.passive_threshold_pct, h.passive_min_flows);
}

} // namespace

nlohmann::json to_json(const health_config& h) {
  nlohmann::json j = {{"check", std::string(check_kind_name(h.kind))},
                      {"interval_ms", h.interval_ms},
                      {"timeout_ms", h.timeout_ms},
                      {"rise", h.rise},
                      {"fall", h.fall},
                      {"jitter_pct", h.jitter_pct},
                      {"port", h.port},
                      {"path", h.path},
                      {"host", h.host},
                      {"status_min", h.status_min},
                      {"status_max", h.status_max},
                      {"body_contains", h.body_contains},
                      {"send", h.send},
                      {"expect", h.expect},
                      {"slow_start_s", h.slow_start_s},
                      {"passive_threshold_pct", h.passive_threshold_pct},
                      {"passive_min_flows", h.passive_min_flows}};
  if (h.source)
    j["source"] = format_ip(*h.source);
  return j;
}

std::string to_yaml(const cp_config& c) {
  // Hand-written rather than YAML::Emitter so the layout is stable and
  // readable; every value is a validated name, an address or a number, none
  // of which needs quoting.
  std::string o = fmt::format("instance: {}\nlimits:\n  flow_table_size: {}\n  maglev_size: {}\n",
                              c.instance, c.limits.flow_table_size, c.limits.maglev_size);
  o += c.services.empty() ? "services: []\n" : "services:\n";
  for (const auto& s : c.services) {
    const auto& t = s.cfg.timeouts;
    o += fmt::format("  - name: {}\n    vip: \"{}\"\n    port: {}\n    proto: {}\n    mode: {}\n"
                     "    scheduler: {}\n    hash_src: {}\n    sh_prefix4: {}\n    sh_prefix6: {}\n"
                     "    sh_timeout: {}\n    gue_port: {}\n    on_backend_down: {}\n"
                     "    timeouts: {{{}}}\n",
                     s.name, format_ip(s.cfg.vip), s.cfg.port, proto_name(s.cfg.proto),
                     mode_name(s.cfg.mode), scheduler_name(s.cfg.scheduler), s.cfg.hash_src,
                     unsigned(s.cfg.sh_prefix4), unsigned(s.cfg.sh_prefix6), s.cfg.sh_timeout_s,
                     s.cfg.gue_port, s.cfg.reset_on_down ? "reset" : "keep", timeouts_yaml(t));
    o += fmt::format("    health: {}\n", health_yaml(s.health));
    o += fmt::format("    announce: {}\n    quorum: {}\n", announce_name(s.announce), s.quorum);
    o += s.cfg.backends.empty() ? "    backends: []\n" : "    backends:\n";
    for (const auto& b : s.cfg.backends) {
      auto h = s.backend_health.find(format_endpoint(b.addr, b.port ? b.port : s.cfg.port));
      o += fmt::format("      - {{address: \"{}\", port: {}, weight: {}, state: {}{}}}\n",
                       format_ip(b.addr), b.port, b.weight, state_name(b.state),
                       h == s.backend_health.end() ? "" : ", health: " + health_yaml(h->second));
    }
  }
  return o;
}

nlohmann::json to_json(const backend_config& b) {
  return {{"address", format_ip(b.addr)},
          {"port", b.port},
          {"weight", b.weight},
          {"state", std::string(state_name(b.state))}};
}

nlohmann::json to_json(const named_service& s) {
  nlohmann::json backends = nlohmann::json::array();
  for (const auto& b : s.cfg.backends) {
    backends.push_back(to_json(b));
    auto h = s.backend_health.find(format_endpoint(b.addr, b.port ? b.port : s.cfg.port));
    if (h != s.backend_health.end())
      backends.back()["health"] = to_json(h->second);
  }
  const auto& t = s.cfg.timeouts;
  return {{"name", s.name},
          {"vip", format_ip(s.cfg.vip)},
          {"port", s.cfg.port},
          {"proto", std::string(proto_name(s.cfg.proto))},
          {"mode", std::string(mode_name(s.cfg.mode))},
          {"scheduler", std::string(scheduler_name(s.cfg.scheduler))},
          {"hash_src", s.cfg.hash_src},
          {"sh_prefix4", s.cfg.sh_prefix4},
          {"sh_prefix6", s.cfg.sh_prefix6},
          {"sh_timeout", s.cfg.sh_timeout_s},
          {"gue_port", s.cfg.gue_port},
          {"on_backend_down", s.cfg.reset_on_down ? "reset" : "keep"},
          {"health", to_json(s.health)},
          {"announce", std::string(announce_name(s.announce))},
          {"quorum", s.quorum},
          {"timeouts", timeouts_json(t)},
          {"backends", backends}};
}

nlohmann::json to_json(const cp_config& c) {
  nlohmann::json services = nlohmann::json::array();
  for (const auto& s : c.services)
    services.push_back(to_json(s));
  return {{"instance", c.instance},
          {"limits",
           {{"flow_table_size", c.limits.flow_table_size}, {"maglev_size", c.limits.maglev_size}}},
          {"services", services}};
}

} // namespace sluice::cp
