#include "config_decode.h"

#include <charconv>
#include <fmt/format.h>
#include <initializer_list>
#include <optional>
#include <tuple>

#include "input_limits.h"
#include "ip_addr.h"
#include "scheduler_names.h"
#include "shm_abi.h"

namespace sluice::cp {

namespace {

int line_of_node(const YAML::Node& n) {
  auto m = n.Mark();
  return m.is_null() ? 0 : m.line + 1;
}

class decoder {
public:
  explicit decoder(decode_result& r) : r_(r) {}

  // At most input_limits::max_issues + 1 are kept (format_issues shows the
  // first max_issues and says there are more): a broken 8 MB file or an alias
  // bomb must not print a million lines.
  void error(const YAML::Node& n, const std::string& path, std::string msg) {
    if (r_.issues.size() > input_limits::max_issues)
      return;
    r_.issues.push_back({line_of_node(n), {path, std::move(msg)}});
  }

  // The fields of mapping `n`, checking that it is a mapping, that every key is
  // one of `allowed` and that none repeats. Missing mapping: empty result.
  std::map<std::string, YAML::Node> fields(const YAML::Node& n, const std::string& path,
                                           std::initializer_list<const char*> allowed) {
    std::map<std::string, YAML::Node> out;
    record(n, path);
    if (!n.IsMap()) {
      error(n, path, "must be a mapping");
      return out;
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key =
          it->first.IsScalar() ? printable(it->first.Scalar(), 64) : std::string("?");
      const std::string fp = path.empty() ? key : path + "." + key;
      bool known = false;
      for (const char* a : allowed)
        known = known || key == a;
      if (!known) {
        std::string list;
        for (const char* a : allowed)
          list += std::string(list.empty() ? "" : ", ") + a;
        error(it->first, fp, fmt::format("unknown field (expected one of: {})", list));
        continue;
      }
      if (out.count(key)) {
        error(it->first, fp,
              fmt::format("duplicate key (first at line {})", line_of_node(out[key])));
        continue;
      }
      out.emplace(key, it->second);
      record(it->second, fp);
      if (!it->second.Mark().is_null())
        r_.lines[fp] = line_of_node(it->first);
    }
    return out;
  }

  std::optional<std::string> string(const YAML::Node& n, const std::string& path) {
    if (!n.IsScalar()) {
      error(n, path, "must be a string");
      return std::nullopt;
    }
    const std::string& s = n.Scalar();
    if (s.size() > input_limits::max_string_bytes) {
      error(n, path,
            fmt::format("longer than {} bytes ({})", input_limits::max_string_bytes, s.size()));
      return std::nullopt;
    }
    if (auto u = check_utf8(s, "the string"); !u) {
      error(n, path, u.error_message());
      return std::nullopt;
    }
    return s;
  }

  std::optional<int64_t> integer(const YAML::Node& n, const std::string& path, int64_t lo,
                                 int64_t hi) {
    if (!n.IsScalar()) {
      error(n, path, fmt::format("must be an integer {}..{}", lo, hi));
      return std::nullopt;
    }
    const std::string& s = n.Scalar();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
      error(n, path, fmt::format("must be an integer {}..{}, got '{}'", lo, hi, printable(s)));
      return std::nullopt;
    }
    if (v < lo || v > hi) {
      error(n, path, fmt::format("must be {}..{}, got {}", lo, hi, v));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const YAML::Node& n, const std::string& path) {
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false"))
      return n.Scalar() == "true";
    error(
        n, path,
        fmt::format("must be true or false, got '{}'", n.IsScalar() ? printable(n.Scalar()) : "?"));
    return std::nullopt;
  }

  std::optional<ip_addr> address(const YAML::Node& n, const std::string& path) {
    auto s = string(n, path);
    if (!s)
      return std::nullopt;
    auto a = parse_ip(*s);
    if (!a)
      error(n, path, fmt::format("must be an IPv4 or IPv6 address, got '{}'", printable(*s)));
    return a;
  }

  template <typename T, typename F>
  std::optional<T> word(const YAML::Node& n, const std::string& path, const char* expected,
                        F parse) {
    auto s = string(n, path);
    if (!s)
      return std::nullopt;
    auto v = parse(*s);
    if (!v)
      error(n, path, fmt::format("must be one of {}, got '{}'", expected, printable(*s)));
    return v;
  }

  void require(const std::map<std::string, YAML::Node>& f, const YAML::Node& parent,
               const std::string& path, std::initializer_list<const char*> names) {
    for (const char* k : names)
      if (!f.count(k))
        error(parent, path.empty() ? k : path + "." + k, "required field missing");
  }

  void record(const YAML::Node& n, const std::string& path) {
    if (!n.Mark().is_null() && !r_.lines.count(path))
      r_.lines[path] = line_of_node(n);
  }

private:
  decode_result& r_;
};

void decode_health_into(decoder& d, const YAML::Node& n, const std::string& p, health_config& h);

void decode_backend_into(decoder& d, const YAML::Node& n, const std::string& p, backend_config& b,
                         const health_config* service_health = nullptr,
                         std::optional<health_config>* health = nullptr) {
  auto f = d.fields(n, p, {"address", "port", "weight", "state", "health"});
  if (!n.IsMap())
    return;
  d.require(f, n, p, {"address"});
  if (f.count("address"))
    if (auto a = d.address(f["address"], p + ".address"))
      b.addr = *a;
  if (f.count("port"))
    if (auto v = d.integer(f["port"], p + ".port", 0, 65535))
      b.port = uint16_t(*v);
  if (f.count("weight"))
    if (auto v = d.integer(f["weight"], p + ".weight", 0, 65535))
      b.weight = uint16_t(*v);
  if (f.count("state"))
    if (auto v = d.word<abi::backend_state>(f["state"], p + ".state",
                                            "up, down, draining, disabled", parse_state))
      b.state = *v;
  if (f.count("health")) {
    if (!health) {
      d.error(f["health"], p + ".health",
              "per-backend checks are set in the service's config (backends[].health)");
    } else {
      health_config h = service_health ? *service_health : health_config{};
      decode_health_into(d, f["health"], p + ".health", h);
      *health = h;
    }
  }
}

void decode_health_into(decoder& d, const YAML::Node& n, const std::string& p, health_config& h) {
  auto f = d.fields(n, p,
                    {"check", "interval_ms", "timeout_ms", "rise", "fall", "jitter_pct", "port",
                     "source", "path", "host", "status_min", "status_max", "body_contains", "send",
                     "expect", "slow_start_s", "passive_threshold_pct", "passive_min_flows"});
  if (!n.IsMap())
    return;
  if (f.count("check"))
    if (auto v = d.word<check_kind>(f["check"], p + ".check", "none, tcp, http, udp",
                                    [](const std::string& w) { return parse_check_kind(w); }))
      h.kind = *v;
  const std::tuple<const char*, uint32_t*, int64_t, int64_t> nums[] = {
      {"interval_ms", &h.interval_ms, 10, 3600000},
      {"timeout_ms", &h.timeout_ms, 1, 600000},
      {"rise", &h.rise, 1, 100},
      {"fall", &h.fall, 1, 100},
      {"jitter_pct", &h.jitter_pct, 0, 50},
      {"slow_start_s", &h.slow_start_s, 0, 3600},
      {"passive_threshold_pct", &h.passive_threshold_pct, 0, 100},
      {"passive_min_flows", &h.passive_min_flows, 1, 1000000}};
  for (auto [k, dst, lo, hi] : nums)
    if (f.count(k))
      if (auto v = d.integer(f[k], p + "." + k, lo, hi))
        *dst = uint32_t(*v);
  if (f.count("port"))
    if (auto v = d.integer(f["port"], p + ".port", 0, 65535))
      h.port = uint16_t(*v);
  if (f.count("status_min"))
    if (auto v = d.integer(f["status_min"], p + ".status_min", 100, 599))
      h.status_min = uint16_t(*v);
  if (f.count("status_max"))
    if (auto v = d.integer(f["status_max"], p + ".status_max", 100, 599))
      h.status_max = uint16_t(*v);
  if (f.count("source"))
    if (auto a = d.address(f["source"], p + ".source"))
      h.source = *a;
  const std::pair<const char*, std::string*> strs[] = {{"path", &h.path},
                                                       {"host", &h.host},
                                                       {"body_contains", &h.body_contains},
                                                       {"send", &h.send},
                                                       {"expect", &h.expect}};
  for (auto [k, dst] : strs)
    if (f.count(k))
      if (auto v = d.string(f[k], p + "." + k))
        *dst = *v;
  if (h.path.empty() || h.path[0] != '/' || h.path.find_first_of(" \r\n") != std::string::npos)
    d.error(f.count("path") ? f["path"] : n, p + ".path",
            fmt::format("must start with '/' and hold no space or line break, got '{}'",
                        printable(h.path)));
  if (h.host.find_first_of(" \r\n") != std::string::npos)
    d.error(f["host"], p + ".host", "must hold no space or line break");
  if (h.status_min > h.status_max)
    d.error(f.count("status_max") ? f["status_max"] : n, p + ".status_max",
            fmt::format("must be >= status_min ({}), got {}", h.status_min, h.status_max));
  if (h.kind == check_kind::udp && h.send.empty())
    d.error(f.count("check") ? f["check"] : n, p + ".send", "a udp check needs a payload to send");
}

void decode_service_into(decoder& d, const YAML::Node& n, const std::string& p, named_service& s) {
  auto f = d.fields(n, p,
                    {"name", "vip", "port", "proto", "mode", "scheduler", "hash_src", "sh_prefix4",
                     "sh_prefix6", "sh_timeout", "timeouts", "gue_port", "on_backend_down",
                     "health", "announce", "quorum", "backends"});
  if (!n.IsMap())
    return;
  d.require(f, n, p, {"name", "vip", "port"});
  if (f.count("name"))
    if (auto v = d.string(f["name"], p + ".name"))
      s.name = *v;
  if (f.count("vip"))
    if (auto a = d.address(f["vip"], p + ".vip"))
      s.cfg.vip = *a;
  if (f.count("port"))
    if (auto v = d.integer(f["port"], p + ".port", 1, 65535))
      s.cfg.port = uint16_t(*v);
  if (f.count("proto"))
    if (auto v = d.word<uint8_t>(f["proto"], p + ".proto", "tcp, udp", parse_proto))
      s.cfg.proto = *v;
  if (f.count("mode"))
    if (auto v = d.word<abi::fwd_mode>(f["mode"], p + ".mode",
                                       "nat, dnat, dsr-l2, dsr-ipip, dsr-gue", parse_mode))
      s.cfg.mode = *v;
  if (f.count("scheduler")) {
    std::string names;
    for (const auto& [n, k] : scheduler_names)
      names += std::string(names.empty() ? "" : ", ") + std::string(n);
    if (auto v = d.word<abi::scheduler_kind>(
            f["scheduler"], p + ".scheduler", names.c_str(),
            [](const std::string& w) { return scheduler_from_name(w); }))
      s.cfg.scheduler = *v;
  }
  if (f.count("hash_src"))
    if (auto v = d.boolean(f["hash_src"], p + ".hash_src"))
      s.cfg.hash_src = *v;
  if (f.count("on_backend_down"))
    if (auto v = d.word<bool>(f["on_backend_down"], p + ".on_backend_down", "keep, reset",
                              [](const std::string& w) -> std::optional<bool> {
                                if (w == "keep")
                                  return false;
                                if (w == "reset")
                                  return true;
                                return std::nullopt;
                              }))
      s.cfg.reset_on_down = *v;
  if (f.count("sh_prefix4"))
    if (auto v = d.integer(f["sh_prefix4"], p + ".sh_prefix4", 0, 32))
      s.cfg.sh_prefix4 = uint8_t(*v);
  if (f.count("sh_prefix6"))
    if (auto v = d.integer(f["sh_prefix6"], p + ".sh_prefix6", 0, 128))
      s.cfg.sh_prefix6 = uint8_t(*v);
  if (f.count("sh_timeout"))
    if (auto v = d.integer(f["sh_timeout"], p + ".sh_timeout", 1, 604800))
      s.cfg.sh_timeout_s = uint32_t(*v);
  if (f.count("gue_port"))
    if (auto v = d.integer(f["gue_port"], p + ".gue_port", 1, 65535))
      s.cfg.gue_port = uint16_t(*v);
  if (f.count("timeouts")) {
    const std::string tp = p + ".timeouts";
    auto t = d.fields(f["timeouts"], tp,
                      {"syn", "established", "fin", "udp", "syn_recv", "time_wait", "closed",
                       "udp_unanswered", "adopted"});
    static_assert(std::size(flow_timeout_fields) == 9, "list the new timeout above");
    for (const auto& tf : flow_timeout_fields)
      if (t.count(tf.name))
        if (auto v = d.integer(t[tf.name], tp + "." + tf.name, 1, max_flow_timeout_s))
          s.cfg.timeouts.*tf.member = uint32_t(*v);
  }
  if (f.count("health"))
    decode_health_into(d, f["health"], p + ".health", s.health);
  if (f.count("announce"))
    if (auto v = d.word<announce_policy>(f["announce"], p + ".announce", "quorum, always, never",
                                         parse_announce))
      s.announce = *v;
  if (f.count("quorum"))
    if (auto v = d.integer(f["quorum"], p + ".quorum", 1, 65535))
      s.quorum = uint32_t(*v);
  if (f.count("backends")) {
    const auto& bn = f["backends"];
    if (bn.IsNull())
      return;
    if (!bn.IsSequence()) {
      d.error(bn, p + ".backends", "must be a list");
      return;
    }
    if (bn.size() > abi::default_capacities.max_backends) {
      d.error(bn, p + ".backends",
              fmt::format("at most {} backends, got {}", abi::default_capacities.max_backends,
                          bn.size()));
      return;
    }
    for (size_t j = 0; j < bn.size(); ++j) {
      backend_config b;
      std::optional<health_config> h;
      decode_backend_into(d, bn[j], fmt::format("{}.backends[{}]", p, j), b, &s.health, &h);
      s.cfg.backends.push_back(b);
      if (h)
        s.backend_health[format_endpoint(b.addr, b.port ? b.port : s.cfg.port)] = *h;
    }
  }
}

} // namespace

decode_result decode_config(const YAML::Node& root) {
  decode_result r;
  decoder d(r);
  if (root.IsNull())
    return r; // an empty file is an empty config
  auto f = d.fields(root, "", {"instance", "limits", "services"});
  if (!root.IsMap())
    return r;
  if (f.count("instance"))
    if (auto v = d.string(f["instance"], "instance"))
      r.config.instance = *v;
  if (f.count("limits")) {
    auto l = d.fields(f["limits"], "limits", {"flow_table_size", "maglev_size"});
    if (l.count("flow_table_size"))
      if (auto v = d.integer(l["flow_table_size"], "limits.flow_table_size", 1, 0xffffffffll))
        r.config.limits.flow_table_size = uint32_t(*v);
    if (l.count("maglev_size"))
      if (auto v = d.integer(l["maglev_size"], "limits.maglev_size", 7, 0xffffffffll))
        r.config.limits.maglev_size = uint32_t(*v);
  }
  if (f.count("services")) {
    const auto& sn = f["services"];
    if (!sn.IsNull() && !sn.IsSequence()) {
      d.error(sn, "services", "must be a list");
    } else if (sn.IsSequence() && sn.size() > abi::default_capacities.max_services) {
      d.error(sn, "services",
              fmt::format("at most {} services, got {}", abi::default_capacities.max_services,
                          sn.size()));
    } else if (sn.IsSequence()) {
      for (size_t i = 0; i < sn.size(); ++i) {
        named_service s;
        decode_service_into(d, sn[i], fmt::format("services[{}]", i), s);
        r.config.services.push_back(std::move(s));
      }
    }
  }
  return r;
}

decode_result decode_service(const YAML::Node& n, const std::string& path, named_service& out) {
  decode_result r;
  decoder d(r);
  decode_service_into(d, n, path, out);
  return r;
}

decode_result decode_backend(const YAML::Node& n, const std::string& path, backend_config& out) {
  decode_result r;
  decoder d(r);
  decode_backend_into(d, n, path, out);
  return r;
}

int line_of(const std::map<std::string, int>& lines, std::string path) {
  for (;;) {
    if (auto it = lines.find(path); it != lines.end())
      return it->second;
    auto cut = path.find_last_of(".[");
    if (cut == std::string::npos)
      return path.empty() ? 0 : line_of(lines, "");
    path.resize(cut);
  }
}

} // namespace sluice::cp
