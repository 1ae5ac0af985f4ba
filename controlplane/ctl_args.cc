#include "ctl_args.h"

#include <fmt/format.h>
#include <set>
#include <sstream>

#include "config_model.h"
#include "mode_names.h"
#include "scheduler_names.h"
#include "service_config.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace sluice::ctl {

po::options_description service_options() {
  po::options_description d("service options");
  d.add_options()("vip", po::value<std::string>()->value_name("ADDR"), "virtual IP (v4 or v6)")(
      "port", po::value<int64_t>()->value_name("N"), "virtual port 1..65535")(
      "proto", po::value<std::string>()->value_name("tcp|udp"),
      "protocol (default tcp)")("mode", po::value<std::string>()->value_name("MODE"),
                                "nat|dnat|dsr-l2|dsr-ipip|dsr-gue (default nat)")(
      "scheduler", po::value<std::string>()->value_name("NAME"),
      "maglev (default), rr, wrr, lc, wlc, sh, random, two-choices, least-bandwidth, "
      "least-response-time")("hash-src", po::value<std::string>()->value_name("true|false"),
                             "maglev/sh: hash the client address only")(
      "sh-prefix4", po::value<int64_t>()->value_name("N"), "sh: IPv4 affinity prefix (32)")(
      "sh-prefix6", po::value<int64_t>()->value_name("N"), "sh: IPv6 affinity prefix (128)")(
      "sh-timeout", po::value<int64_t>()->value_name("S"), "sh: persistence, s (300)")(
      "gue-port", po::value<int64_t>()->value_name("N"), "dsr-gue UDP port (default 6080)")(
      "on-backend-down", po::value<std::string>()->value_name("keep|reset"),
      "flows of a backend that goes down: keep (default) or reset (NAT modes)")(
      "timeout-syn", po::value<int64_t>()->value_name("S"), "SYN idle timeout, s (default 30)")(
      "timeout-established", po::value<int64_t>()->value_name("S"),
      "established idle timeout, s (default 900)")(
      "timeout-fin", po::value<int64_t>()->value_name("S"),
      "FIN (one side, or both without the last ACK) idle timeout, s (default 7)")(
      "timeout-udp", po::value<int64_t>()->value_name("S"), "UDP idle timeout, s (default 300)")(
      "timeout-syn-recv", po::value<int64_t>()->value_name("S"),
      "SYN-ACK seen, client's ACK pending (NAT modes) idle timeout, s (default 30)")(
      "timeout-time-wait", po::value<int64_t>()->value_name("S"),
      "TIME_WAIT idle timeout, s (default 7)")("timeout-closed",
                                               po::value<int64_t>()->value_name("S"),
                                               "closed-by-RST idle timeout, s (default 3)")(
      "timeout-udp-unanswered", po::value<int64_t>()->value_name("S"),
      "UDP flow with one datagram so far, s (default 30)")(
      "timeout-adopted", po::value<int64_t>()->value_name("S"),
      "flow adopted mid-connection (no SYN), s (default 10)")(
      "health", po::value<std::string>()->value_name("JSON"),
      "health check as a JSON object, fields as in the config file's `health`")(
      "defence", po::value<std::string>()->value_name("JSON"),
      "new-flow defence as a JSON object, fields as in the config file's `defence`")(
      "synproxy", po::value<std::string>()->value_name("off|on|auto"),
      "SYN cookies (nat, dnat); same as --defence '{\"synproxy\": ...}'")(
      "announce", po::value<std::string>()->value_name("quorum|always|never"),
      "BGP announcement of the VIP (default quorum)")(
      "quorum", po::value<int64_t>()->value_name("N"),
      "healthy backends needed to announce (default 1)");
  return d;
}

po::options_description backend_options() {
  po::options_description d("backend options");
  d.add_options()("port", po::value<int64_t>()->value_name("N"),
                  "backend port (default 0 = the service's port)")(
      "weight", po::value<int64_t>()->value_name("W"), "weight 0..65535 (default 1)")(
      "state", po::value<std::string>()->value_name("STATE"),
      "up|down|draining|disabled")("health", po::value<std::string>()->value_name("JSON"),
                                   "this backend's health-check override as a JSON object")(
      "max-conns", po::value<int64_t>()->value_name("N"),
      "connection cap, whole balancer (default 0 = none)")(
      "min-conns", po::value<int64_t>()->value_name("N"),
      "takes new flows again below this (default 0 = 3/4 of max-conns)");
  return d;
}

namespace {

result<po::variables_map> parse_opts(const po::options_description& d,
                                     const std::vector<std::string>& args) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return make_error(e.what());
  }
  return vm;
}

// `--health JSON` into the request; a malformed object is reported here, a
// wrong field by the daemon's decoder.
status add_health(const po::variables_map& vm, json& target) {
  if (!vm.count("health"))
    return {};
  json h = json::parse(vm["health"].as<std::string>(), nullptr, false);
  if (h.is_discarded() || !h.is_object())
    return make_error("--health: expected a JSON object");
  target["health"] = h;
  return {};
}

// The sluicectl option of a timeout field: "syn_recv" -> "timeout-syn-recv".
std::string timeout_option(const char* field) {
  std::string o = std::string("timeout-") + field;
  for (char& c : o)
    if (c == '_')
      c = '-';
  return o;
}

// A JSON value as one word of a save line: compact, and the spaces that can
// only occur inside its strings written as \u0020 (still valid JSON).
std::string one_word(const json& j) {
  std::string s = j.dump();
  std::string o;
  for (char ch : s)
    o += ch == ' ' ? std::string("\\u0020") : std::string(1, ch);
  return o;
}

} // namespace

result<json> parse_service_fields(const std::vector<std::string>& args) {
  auto vm = parse_opts(service_options(), args);
  if (!vm)
    return vm.err();
  json f = json::object();
  for (const char* k : {"vip", "proto", "mode", "scheduler", "announce"})
    if (vm->count(k))
      f[k] = (*vm)[k].as<std::string>();
  if (vm->count("on-backend-down"))
    f["on_backend_down"] = (*vm)["on-backend-down"].as<std::string>();
  if (vm->count("port"))
    f["port"] = (*vm)["port"].as<int64_t>();
  if (vm->count("hash-src")) {
    const auto v = (*vm)["hash-src"].as<std::string>();
    if (v == "true" || v == "false")
      f["hash_src"] = v == "true";
    else
      f["hash_src"] = v; // the daemon names the problem
  }
  for (const char* k : {"sh-prefix4", "sh-prefix6", "sh-timeout"})
    if (vm->count(k)) {
      std::string key = k;
      key[2] = '_';
      f[key] = (*vm)[k].as<int64_t>();
    }
  if (vm->count("quorum"))
    f["quorum"] = (*vm)["quorum"].as<int64_t>();
  if (vm->count("gue-port"))
    f["gue_port"] = (*vm)["gue-port"].as<int64_t>();
  for (const auto& tf : flow_timeout_fields)
    if (std::string opt = timeout_option(tf.name); vm->count(opt))
      f["timeouts"][tf.name] = (*vm)[opt].as<int64_t>();
  if (auto r = add_health(*vm, f); !r)
    return r.err();
  if (vm->count("defence")) {
    json d = json::parse((*vm)["defence"].as<std::string>(), nullptr, false);
    if (d.is_discarded() || !d.is_object())
      return make_error("--defence: expected a JSON object");
    f["defence"] = d;
  }
  if (vm->count("synproxy"))
    f["defence"]["synproxy"] = (*vm)["synproxy"].as<std::string>();
  return f;
}

result<json> parse_backend_fields(const std::string& addr, const std::vector<std::string>& args) {
  auto vm = parse_opts(backend_options(), args);
  if (!vm)
    return vm.err();
  json b = {{"address", addr}};
  for (const char* k : {"port", "weight"})
    if (vm->count(k))
      b[k] = (*vm)[k].as<int64_t>();
  if (vm->count("max-conns"))
    b["max_conns"] = (*vm)["max-conns"].as<int64_t>();
  if (vm->count("min-conns"))
    b["min_conns"] = (*vm)["min-conns"].as<int64_t>();
  if (vm->count("state"))
    b["state"] = (*vm)["state"].as<std::string>();
  if (auto r = add_health(*vm, b); !r)
    return r.err();
  return b;
}

std::string save_text(const json& c) {
  // Only what differs from the defaults (service_config.h, config_model.h),
  // so a saved line reads like the command an operator would type; restore
  // gets the omitted fields back as the same defaults.
  const service_config ds;
  const backend_config db;
  const cp::limits_config dl;
  std::string o =
      fmt::format("# sluicectl save: instance {}\n", c.at("instance").get<std::string>());
  const auto& lim = c.at("limits");
  std::string limits;
  if (lim.at("flow_table_size").get<uint64_t>() != dl.flow_table_size)
    limits += fmt::format(" --flow-table-size {}", lim.at("flow_table_size").get<uint64_t>());
  if (lim.at("maglev_size").get<uint64_t>() != dl.maglev_size)
    limits += fmt::format(" --maglev-size {}", lim.at("maglev_size").get<uint64_t>());
  if (!limits.empty())
    o += "limits" + limits + "\n";
  for (const auto& s : c.at("services")) {
    const auto& t = s.at("timeouts");
    o += fmt::format("service add {} --vip {} --port {}", s.at("name").get<std::string>(),
                     s.at("vip").get<std::string>(), s.at("port").get<int>());
    auto opt_str = [&](const char* flag, const std::string& v, std::string_view dflt) {
      if (v != dflt)
        o += fmt::format(" --{} {}", flag, v);
    };
    auto opt_num = [&](const char* flag, uint64_t v, uint64_t dflt) {
      if (v != dflt)
        o += fmt::format(" --{} {}", flag, v);
    };
    opt_str("proto", s.at("proto").get<std::string>(), "tcp");
    opt_str("mode", s.at("mode").get<std::string>(), fwd_mode_name(ds.mode));
    opt_str("scheduler", s.at("scheduler").get<std::string>(), scheduler_name(ds.scheduler));
    if (s.at("hash_src").get<bool>() != ds.hash_src)
      o += fmt::format(" --hash-src {}", s.at("hash_src").get<bool>() ? "true" : "false");
    opt_num("sh-prefix4", s.at("sh_prefix4").get<uint64_t>(), ds.sh_prefix4);
    opt_num("sh-prefix6", s.at("sh_prefix6").get<uint64_t>(), ds.sh_prefix6);
    opt_num("sh-timeout", s.at("sh_timeout").get<uint64_t>(), ds.sh_timeout_s);
    opt_num("gue-port", s.at("gue_port").get<uint64_t>(), ds.gue_port);
    opt_str("on-backend-down", s.value("on_backend_down", std::string("keep")), "keep");
    opt_str("announce", s.value("announce", std::string("quorum")), "quorum");
    opt_num("quorum", s.value("quorum", uint64_t(1)), 1);
    for (const auto& tf : flow_timeout_fields)
      if (t.contains(tf.name))
        opt_num(timeout_option(tf.name).c_str(), t.at(tf.name).get<uint64_t>(),
                ds.timeouts.*tf.member);
    if (s.contains("health") && s["health"].value("check", std::string("none")) != "none")
      o += " --health " + one_word(s["health"]);
    if (s.contains("defence")) {
      // Only the fields that differ from flow_defence's defaults; restore
      // fills the others with the same defaults.
      const flow_defence dd{};
      const json defaults = {{"mid_flow_rst", dd.mid_flow_rst},
                             {"synproxy", "off"},
                             {"synproxy_syn_rate", dd.synproxy_syn_rate},
                             {"synproxy_half_open", dd.synproxy_half_open},
                             {"client_rate", dd.client_rate},
                             {"client_burst", dd.client_burst},
                             {"client_prefix4", dd.client_prefix4},
                             {"client_prefix6", dd.client_prefix6}};
      json changed = json::object();
      for (auto it = s["defence"].begin(); it != s["defence"].end(); ++it)
        if (!defaults.contains(it.key()) || defaults[it.key()] != it.value())
          changed[it.key()] = it.value();
      if (!changed.empty())
        o += " --defence " + one_word(changed);
    }
    o += "\n";
    for (const auto& b : s.at("backends")) {
      o += fmt::format("backend add {} {}", s.at("name").get<std::string>(),
                       b.at("address").get<std::string>());
      if (b.at("port").get<int>() != db.port)
        o += fmt::format(" --port {}", b.at("port").get<int>());
      if (b.at("weight").get<int>() != db.weight)
        o += fmt::format(" --weight {}", b.at("weight").get<int>());
      if (b.at("state").get<std::string>() != "up")
        o += " --state " + b.at("state").get<std::string>();
      if (b.value("max_conns", 0) || b.value("min_conns", 0))
        o += fmt::format(" --max-conns {} --min-conns {}", b.value("max_conns", 0),
                         b.value("min_conns", 0));
      if (b.contains("health"))
        o += " --health " + one_word(b["health"]);
      o += "\n";
    }
  }
  return o;
}

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string s; in >> s;)
    w.push_back(s);
  return w;
}

// As many as the daemon reports for a config (input_limits::max_issues).
constexpr size_t max_restore_errors = 100;

result<json> restore_config(const std::string& text, std::map<std::string, int>* service_lines) {
  json c = {{"services", json::array()}};
  std::istringstream in(text);
  std::string line, errors;
  std::set<std::string> refused; // services whose own line failed: no follow-up errors
  size_t n_errors = 0;
  for (int n = 1; std::getline(in, line); ++n) {
    auto w = split_words(line);
    if (w.empty() || w[0][0] == '#')
      continue;
    auto fail = [&](const std::string& why) {
      if (++n_errors <= max_restore_errors)
        errors += fmt::format("{}line {}: {}: {}", errors.empty() ? "" : "\n", n, why, line);
    };
    if (w[0] == "limits") {
      po::options_description d;
      d.add_options()("flow-table-size", po::value<int64_t>())("maglev-size", po::value<int64_t>());
      auto vm = parse_opts(d, {w.begin() + 1, w.end()});
      if (!vm) {
        fail(vm.error_message());
        continue;
      }
      if (vm->count("flow-table-size"))
        c["limits"]["flow_table_size"] = (*vm)["flow-table-size"].as<int64_t>();
      if (vm->count("maglev-size"))
        c["limits"]["maglev_size"] = (*vm)["maglev-size"].as<int64_t>();
    } else if (w.size() >= 3 && w[0] == "service" && w[1] == "add") {
      auto f = parse_service_fields({w.begin() + 3, w.end()});
      if (!f) {
        fail(f.error_message());
        refused.insert(w[2]);
        continue;
      }
      json s = f.value();
      s["name"] = w[2];
      s["backends"] = json::array();
      c["services"].push_back(s);
      if (service_lines)
        service_lines->emplace(w[2], n);
    } else if (w.size() >= 4 && w[0] == "backend" && w[1] == "add") {
      auto b = parse_backend_fields(w[3], {w.begin() + 4, w.end()});
      if (!b) {
        fail(b.error_message());
        continue;
      }
      json* svc = nullptr;
      for (auto& s : c["services"])
        if (s["name"] == w[2])
          svc = &s;
      if (!svc) {
        if (!refused.count(w[2]))
          fail(fmt::format("service '{}' is not added above", w[2]));
        continue;
      }
      (*svc)["backends"].push_back(b.value());
    } else {
      fail("expected 'limits ...', 'service add ...' or 'backend add ...'");
    }
  }
  if (n_errors > max_restore_errors)
    errors += "\n(more errors not shown: fix these first)";
  if (!errors.empty())
    return make_error(errors);
  return c;
}

std::string locate_services(const std::string& error, const std::map<std::string, int>& lines) {
  std::istringstream in(error);
  std::string out;
  for (std::string l; std::getline(in, l);) {
    for (const auto& [name, n] : lines) {
      const std::string head = "service " + name;
      if (l.rfind(head, 0) == 0 && (l.size() == head.size() || l[head.size()] == ':')) {
        l.insert(head.size(), fmt::format(" (line {})", n));
        break;
      }
    }
    out += (out.empty() ? "" : "\n") + l;
  }
  return out;
}

} // namespace sluice::ctl
