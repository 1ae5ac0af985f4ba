#include "api_handler.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <signal.h>
#include <unistd.h>

#include "config_decode.h"
#include "config_encode.h"
#include "config_load.h"
#include "conns_query.h"
#include "dataplane_telemetry.h"
#include "input_limits.h"
#include "issue_naming.h"
#include "json_tree.h"
#include "log.h"
#include "port_stats_query.h"
#include "publisher.h"
#include "shm_atomic.h"
#include "stats_reader.h"
#include "worker_watch.h"

namespace sluice::cp {

namespace {

using json = nlohmann::json;

// A bad request field. Thrown only inside this file and always caught in
// handle(), which turns it into an error answer.
struct request_error {
  std::string message;
};

const json& need(const json& req, const char* key) {
  if (!req.contains(key))
    throw request_error{fmt::format("missing field '{}'", key)};
  return req.at(key);
}

std::string need_string(const json& req, const char* key) {
  const auto& v = need(req, key);
  if (!v.is_string())
    throw request_error{fmt::format("field '{}' must be a string", key)};
  return v.get<std::string>();
}

int64_t int_field(const json& req, const char* key, int64_t lo, int64_t hi, int64_t dflt) {
  if (!req.contains(key))
    return dflt;
  const auto& v = req.at(key);
  if (!v.is_number_integer())
    throw request_error{fmt::format("field '{}' must be an integer {}..{}", key, lo, hi)};
  int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    throw request_error{fmt::format("{}: must be {}..{}, got {}", key, lo, hi, x)};
  return x;
}

backend_ref ref_of(const json& req) {
  const std::string a = need_string(req, "address");
  auto addr = parse_ip(a);
  if (!addr)
    throw request_error{fmt::format("address: must be an IPv4 or IPv6 address, got '{}'", a)};
  return backend_ref{*addr, uint16_t(int_field(req, "port", 0, 65535, 0))};
}

// Decoding problems of one service or backend from the API, named by what
// the request carried (its name, its address) rather than by field path.
template <typename T>
void throw_issues(decode_result d, const T& decoded, const std::string& root) {
  if (d.issues.empty())
    return;
  name_issue_paths(d.issues, decoded, root);
  throw request_error{format_issues("", d.issues)};
}

json answer(const result<change_result>& r) {
  if (!r)
    return {{"ok", false}, {"error", r.error_message()}};
  json a = {{"ok", r->warning.empty()}, {"generation", r->generation}, {"diff", r->diff}};
  if (!r->warning.empty()) {
    a["committed"] = true;
    a["error"] = fmt::format("committed as generation {}, but: {}", r->generation, r->warning);
  }
  return a;
}

json counters_json(const abi::service_counters& c) {
  return {{"packets", c.packets},
          {"bytes", c.bytes},
          {"reply_packets", c.reply_packets},
          {"reply_bytes", c.reply_bytes},
          {"connections", c.new_flows},
          {"no_backend", c.no_backend},
          {"limited", c.limited},
          {"active_flows", c.active_flows}};
}

json counters_json(const abi::backend_counters& c) {
  return {{"packets", c.packets},
          {"bytes", c.bytes},
          {"connections", c.new_flows},
          {"active_flows", c.active_flows},
          {"inactive_flows", c.inactive_flows},
          {"syn_unanswered", c.syn_unanswered},
          {"rst_from_backend", c.rst_from_backend},
          {"icmp_unreachable", c.icmp_unreachable},
          {"nat_port_exhausted", c.nat_port_exhausted},
          {"conn_limited", c.conn_limited}};
}

} // namespace

std::string api_handler::handle_line(const std::string& line) {
  // Bounds first, so that nothing a client sends reaches the JSON parser (or
  // the recursive tree conversion) unbounded, and no error echoes bytes the
  // serializer cannot encode.
  auto refuse = [](const std::string& why) {
    return json{{"version", api_version}, {"ok", false}, {"error", why}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
  };
  if (line.size() > input_limits::max_request_bytes)
    return refuse(fmt::format("request of {} bytes: at most {} per line", line.size(),
                              input_limits::max_request_bytes));
  if (auto u = check_utf8(line, "the request"); !u)
    return refuse(u.error_message());
  if (auto d = check_json_depth(line); !d)
    return refuse(d.error_message());
  try {
    json req;
    try {
      req = json::parse(line);
    } catch (const json::exception& e) {
      return refuse(std::string("malformed JSON: ") + e.what());
    }
    return handle(req).dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const std::exception& e) {
    return refuse(std::string("internal error: ") + e.what());
  } catch (...) {
    return refuse("internal error");
  }
}

json api_handler::handle(const json& req) {
  json a;
  try {
    if (!req.is_object())
      throw request_error{"request must be a JSON object"};
    if (int_field(req, "version", 0, 1000000, -1) != api_version)
      throw request_error{
          fmt::format("unsupported API version (this control plane speaks {})", api_version)};
    a = dispatch(need_string(req, "cmd"), req);
  } catch (const request_error& e) {
    a = {{"ok", false}, {"error", e.message}};
  } catch (const std::exception& e) {
    a = {{"ok", false}, {"error", std::string("internal error: ") + e.what()}};
  } catch (...) {
    a = {{"ok", false}, {"error", "internal error"}};
  }
  if (req.is_object() && req.contains("cmd") && req["cmd"].is_string())
    audit(req["cmd"].get<std::string>(), req, a);
  a["version"] = api_version;
  return a;
}

// One line per change request (applied or refused); reads are not logged.
void api_handler::audit(const std::string& cmd, const json& req, const json& a) {
  static const char* const changes[] = {"service.add",   "service.del",     "service.set",
                                        "backend.add",   "backend.del",     "backend.set-weight",
                                        "backend.drain", "backend.undrain", "apply"};
  if (std::find(std::begin(changes), std::end(changes), cmd) == std::end(changes) ||
      (req.contains("dry_run") && req["dry_run"] == true))
    return; // (a non-boolean dry_run is refused, and audited as such)
  audit_record r;
  r.uid = peer_uid_;
  r.pid = peer_pid_;
  r.command = cmd;
  for (const char* k : {"name", "service"})
    if (req.contains(k) && req[k].is_string())
      r.target = req[k].get<std::string>();
    else if (req.contains(k) && req[k].is_object() && req[k].contains("name") &&
             req[k]["name"].is_string())
      r.target = req[k]["name"].get<std::string>();
  if (req.contains("address") && req["address"].is_string())
    r.target += " " + req["address"].get<std::string>();
  r.ok = a.value("ok", false) || a.value("committed", false);
  r.generation = a.value("generation", uint64_t(0));
  for (const auto& d : a.value("diff", json::array()))
    if (d.is_string())
      r.diff.push_back(d.get<std::string>());
  if (!r.ok || a.contains("error"))
    r.error = a.value("error", std::string());
  log_audit(r);
}

json api_handler::dispatch(const std::string& cmd, const json& req) {
  auto& st = *ctx_.state;
  if (cmd == "status")
    return status();
  if (cmd == "stats")
    return stats();
  if (cmd == "conns")
    return conns(req);
  if (cmd == "zero")
    return zero(req);
  if (cmd == "ports") {
    json a;
    if (ctx_.port_stats) {
      // The last known values, with their age: `fresh` false when the
      // dataplane did not answer the latest query.
      port_stats_snapshot s = ctx_.port_stats();
      if (!s.ports)
        throw request_error{s.error.empty() ? "dataplane has not answered a port query yet"
                                            : s.error};
      a = *s.ports;
      a["age_s"] = s.age_s;
      a["fresh"] = s.up;
      if (!s.up)
        a["stale_reason"] = s.error;
    } else {
      auto r = query_port_stats(ctx_.shm_path, std::chrono::milliseconds(2000));
      if (!r)
        throw request_error{r.error_message()};
      a = r.value();
    }
    a["ok"] = true;
    if (ctx_.steer_counters)
      a["steer"] = ctx_.steer_counters();
    return a;
  }
  if (cmd == "config.get")
    return {{"ok", true}, {"config", to_json(st.desired())}, {"yaml", to_yaml(st.desired())}};
  if (cmd == "service.list") {
    json list = json::array();
    for (const auto& s : st.desired().services)
      list.push_back(to_json(s));
    return {{"ok", true}, {"services", list}};
  }
  if (cmd == "service.add") {
    named_service s;
    throw_issues(decode_service(to_tree(need(req, "service")), "service", s), s, "service");
    return answer(st.add_service(std::move(s)));
  }
  if (cmd == "service.del")
    return answer(st.del_service(need_string(req, "name")));
  if (cmd == "service.set") {
    const std::string name = need_string(req, "name");
    const auto* old = st.desired().find(name);
    if (!old)
      throw request_error{fmt::format("service '{}' does not exist", name)};
    json merged = to_json(*old);
    const auto& fields = need(req, "fields");
    if (!fields.is_object())
      throw request_error{"field 'fields' must be an object"};
    for (auto it = fields.begin(); it != fields.end(); ++it)
      merged[it.key()] = it.value();
    named_service s;
    throw_issues(decode_service(to_tree(merged), "service", s), s, "service");
    return answer(st.set_service(name, std::move(s)));
  }
  if (cmd == "backend.list") {
    const std::string name = need_string(req, "service");
    const auto* s = st.desired().find(name);
    if (!s)
      throw request_error{fmt::format("service '{}' does not exist", name)};
    json backends = to_json(*s)["backends"];
    if (ctx_.annotate_backends)
      ctx_.annotate_backends(name, backends);
    return {{"ok", true}, {"service", name}, {"backends", backends}};
  }
  if (cmd == "backend.add") {
    backend_config b;
    throw_issues(decode_backend(to_tree(need(req, "backend")), "backend", b), b, "backend");
    return answer(st.add_backend(need_string(req, "service"), b));
  }
  if (cmd == "backend.del")
    return answer(st.del_backend(need_string(req, "service"), ref_of(req)));
  if (cmd == "backend.set-weight") {
    if (!req.contains("weight"))
      throw request_error{"missing field 'weight'"};
    auto w = uint16_t(int_field(req, "weight", 0, 65535, 0));
    return answer(st.set_weight(need_string(req, "service"), ref_of(req), w));
  }
  if (cmd == "backend.drain")
    return answer(st.drain(need_string(req, "service"), ref_of(req)));
  if (cmd == "backend.undrain")
    return answer(st.undrain(need_string(req, "service"), ref_of(req)));
  if (cmd == "apply") {
    if (req.contains("dry_run") && !req.at("dry_run").is_boolean())
      throw request_error{"field 'dry_run' must be true or false"};
    const bool dry = req.value("dry_run", false);
    decode_result d;
    std::string label;
    if (req.contains("yaml")) {
      label = req.contains("file") ? printable(need_string(req, "file"), 256) : "<apply>";
      auto parsed = parse_yaml_bounded(need_string(req, "yaml"), label);
      if (!parsed)
        throw request_error{parsed.error_message()};
      YAML::Node root = parsed.value();
      if (root.IsMap() && !root["instance"])
        root["instance"] = st.desired().instance; // a file may leave the instance implicit
      d = decode_config(root);
    } else {
      json c = need(req, "config");
      if (c.is_object() && !c.contains("instance"))
        c["instance"] = st.desired().instance;
      d = decode_config(to_tree(c));
    }
    auto issues = all_issues(d, ctx_.region ? ctx_.region->caps() : abi::default_capacities);
    if (!issues.empty())
      throw request_error{format_issues(label, std::move(issues))};
    auto a = answer(st.apply(std::move(d.config), dry));
    a["dry_run"] = dry;
    return a;
  }
  if (ctx_.extra_commands)
    if (auto a = ctx_.extra_commands(cmd, req))
      return *a;
  throw request_error{fmt::format("unknown command '{}'", cmd)};
}

json api_handler::status() {
  const auto& st = *ctx_.state;
  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx_.started).count();
  json a = {{"ok", true},
            {"pid", ::getpid()},
            {"instance", st.desired().instance},
            {"uptime_s", uptime},
            {"generation", st.generation()},
            {"services", st.desired().services.size()},
            {"shm_path", ctx_.shm_path},
            {"socket", ctx_.socket_path},
            {"state_file", ctx_.state_file}};
  if (ctx_.publishes)
    a["publish"] = {{"count", ctx_.publishes->count},
                    {"failures", ctx_.publishes->failures},
                    {"soft_updates", ctx_.publishes->soft_updates},
                    {"last_ms", ctx_.publishes->last_ms},
                    {"max_ms", ctx_.publishes->max_ms}};
  if (!ctx_.region)
    return a;
  const auto* h = ctx_.region->header();
  const uint64_t now = monotonic_ns();
  const uint64_t gen = load_acquire(h->generation);
  const bool dp = dataplane_alive(*ctx_.region);
  const uint64_t dp_hb = load_relaxed(h->procs.dp_heartbeat_ns);
  a["shm_generation"] = gen;
  a["dataplane"] = {{"pid", load_relaxed(h->procs.dp_pid)},
                    {"alive", dp},
                    {"workers", load_relaxed(h->procs.dp_workers)},
                    {"heartbeat_age_s", dp_hb && now > dp_hb ? double(now - dp_hb) / 1e9 : -1.0}};
  // Raw counters since the dataplane started (not `zero`'s baseline): the
  // handoff share says whether steering works on this NIC.
  counter_snapshot snap;
  if (ctx_.pub)
    snap = read_counters(*ctx_.region, ctx_.pub->builder(), ctx_.state->desired());
  auto counters_of = [&](uint32_t worker) -> const counter_snapshot::per_worker* {
    for (const auto& w : snap.workers)
      if (w.worker == worker)
        return &w;
    return nullptr;
  };
  json workers = json::array(), stalled = json::array();
  for (const auto& l : watch_workers(*ctx_.region, now, ctx_.stall_ms)) {
    const auto* ack = ctx_.region->worker_ack(l.worker);
    const uint64_t acked = load_acquire(ack->acked_generation);
    json w = {{"worker", l.worker},
              {"lcore", load_relaxed(ack->lcore)},
              {"acked_generation", acked},
              {"in_sync", acked >= gen},
              {"heartbeat_age_s", l.heartbeat_age_s},
              {"stalled", l.stalled}};
    if (const auto* c = counters_of(l.worker)) {
      w["rx_packets"] = c->counters[size_t(worker_counter::rx_packets)];
      w["handoff_out"] = c->counters[size_t(worker_counter::handoff_out)];
      w["handoff_in"] = c->counters[size_t(worker_counter::handoff_in)];
      w["handoff_fraction"] = handoff_fraction(c->counters);
    }
    workers.push_back(w);
    if (l.stalled)
      stalled.push_back(l.worker);
  }
  if (ctx_.pub)
    a["handoff"] = {{"rx_packets", snap.worker[size_t(worker_counter::rx_packets)]},
                    {"handoff_out", snap.worker[size_t(worker_counter::handoff_out)]},
                    {"fraction", handoff_fraction(snap.worker)}};
  a["stalled_workers"] = stalled;
  a["workers"] = workers;
  a["lagging_workers"] = ctx_.pub ? ctx_.pub->lagging_workers(gen) : std::vector<uint32_t>{};
  return a;
}

json api_handler::stats() {
  const auto& c = ctx_.state->desired();
  json a = {{"ok", true}, {"generation", ctx_.state->generation()}};
  if (!ctx_.region || !ctx_.pub) {
    a["time_ns"] = monotonic_ns();
    a["services"] = json::array();
    return a;
  }
  auto snap = read_counters(*ctx_.region, ctx_.pub->builder(), c);
  baseline_.apply(c, snap);
  // What the dataplane acts on (health checks, slow start applied), next to
  // the configured state: an operator must see a backend that checks down.
  const auto eff = ctx_.state->effective(c);
  a["time_ns"] = snap.time_ns;
  json services = json::array();
  for (size_t i = 0; i < c.services.size(); ++i) {
    json s = counters_json(snap.services[i]);
    s["name"] = c.services[i].name;
    json bs = json::array();
    // The dataplane keeps the inactive gauge per backend only: a service's
    // is the sum of its backends'.
    uint64_t inactive = 0;
    for (size_t j = 0; j < c.services[i].cfg.backends.size(); ++j) {
      inactive += snap.backends[i][j].inactive_flows;
      json b = counters_json(snap.backends[i][j]);
      const auto& bc = c.services[i].cfg.backends[j];
      b["address"] = format_ip(bc.addr);
      b["port"] = bc.port ? bc.port : c.services[i].cfg.port;
      b["state"] = std::string(state_name(bc.state));
      if (i < eff.size() && j < eff[i].backends.size()) {
        b["effective_state"] = std::string(state_name(eff[i].backends[j].state));
        b["effective_weight"] = eff[i].backends[j].weight;
      }
      bs.push_back(b);
    }
    s["backends"] = bs;
    s["inactive_flows"] = inactive;
    services.push_back(s);
  }
  a["services"] = services;
  json drops = json::object();
  for (size_t i = 0; i < drop_reason_count; ++i)
    drops[std::string(drop_reason_names[i])] = snap.drops[i];
  a["drops"] = drops;
  json worker = json::object();
  for (size_t i = 0; i < worker_counter_count; ++i)
    worker[std::string(worker_counter_names[i])] = snap.worker[i];
  a["worker"] = worker;
  return a;
}

// Counters from now on count from 0 in `stats` (counter_baseline.h).
json api_handler::zero(const json& req) {
  const auto& c = ctx_.state->desired();
  std::string only;
  if (req.contains("service")) {
    only = need_string(req, "service");
    if (!c.find(only))
      throw request_error{fmt::format("service '{}' does not exist", only)};
  }
  if (!ctx_.region || !ctx_.pub)
    throw request_error{"no shared memory attached"};
  baseline_.zero(c, read_counters(*ctx_.region, ctx_.pub->builder(), c), only);
  return {{"ok", true}, {"zeroed", only.empty() ? json("all") : json(only)}};
}

// Tracked flows, from the dataplane's telemetry socket (conns_query.h).
json api_handler::conns(const json& req) {
  auto r = parse_conns_request(req);
  if (!r)
    throw request_error{r.error_message()};
  if (!ctx_.region || !ctx_.pub)
    throw request_error{"no shared memory attached"};
  auto a = query_conns(r.value(), ctx_.state->desired(), *ctx_.region, *ctx_.pub, ctx_.shm_path);
  if (!a)
    throw request_error{a.error_message()};
  return a.value();
}

} // namespace sluice::cp
