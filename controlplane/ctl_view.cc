#include "ctl_view.h"

#include <algorithm>
#include <fmt/format.h>

using nlohmann::json;

namespace sluice::ctl {

namespace {

std::string endpoint(const std::string& addr, int port) {
  if (addr.find(':') != std::string::npos)
    return fmt::format("[{}]:{}", addr, port);
  return fmt::format("{}:{}", addr, port);
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

uint64_t num(const json& j, const char* k) {
  return j.contains(k) && j[k].is_number() ? j[k].get<uint64_t>() : 0;
}

// Counters of service i / backend j in a stats answer (empty object when absent).
const json& service_stats(const json& stats, size_t i) {
  static const json empty = json::object();
  if (!stats.contains("services") || i >= stats["services"].size())
    return empty;
  return stats["services"][i];
}

const json& backend_stats(const json& stats, size_t i, size_t j) {
  static const json empty = json::object();
  const auto& s = service_stats(stats, i);
  if (!s.contains("backends") || j >= s["backends"].size())
    return empty;
  return s["backends"][j];
}

double elapsed_s(const json& now, const json* prev) {
  if (!prev)
    return 0;
  double d = double(num(now, "time_ns")) - double(num(*prev, "time_ns"));
  return d > 0 ? d / 1e9 : 0;
}

std::string rate(const json& now, const json* prev_obj, const char* k, double dt) {
  if (!prev_obj || dt <= 0)
    return "0";
  uint64_t a = num(*prev_obj, k), b = num(now, k);
  return fmt::format("{:.0f}", b >= a ? double(b - a) / dt : 0.0);
}

// The state the dataplane acts on (health checks applied) when the daemon
// reports it, else the configured one.
std::string shown_state(const json& backend, const json& backend_stats) {
  if (backend_stats.contains("effective_state") && backend_stats["effective_state"].is_string())
    return backend_stats["effective_state"].get<std::string>();
  return backend["state"].get<std::string>();
}

} // namespace

std::string render_list(const json& config, const json& stats, const json* prev, list_kind kind) {
  std::string o = fmt::format("Sluice instance {} (generation {})\n",
                              config.value("instance", std::string("?")), num(stats, "generation"));
  const double dt = elapsed_s(stats, prev);
  switch (kind) {
  case list_kind::plain:
    o += "Prot LocalAddress:Port Scheduler Flags\n"
         "  -> RemoteAddress:Port           Forward  Weight State    ActiveConn InActConn\n";
    break;
  case list_kind::stats:
    o += "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes "
         "ActiveConn InActConn\n"
         "  -> RemoteAddress:Port\n";
    break;
  case list_kind::rate:
    o += "Prot LocalAddress:Port                CPS    InPPS   OutPPS    InBPS   OutBPS\n"
         "  -> RemoteAddress:Port\n";
    break;
  }
  const auto& services = config.at("services");
  for (size_t i = 0; i < services.size(); ++i) {
    const auto& s = services[i];
    const std::string vip = endpoint(s["vip"], s["port"].get<int>());
    const std::string proto = upper(s["proto"]);
    const auto& ss = service_stats(stats, i);
    const json* ps = prev ? &service_stats(*prev, i) : nullptr;
    if (kind == list_kind::plain)
      o += fmt::format("{:<4} {} {} ({}, {})\n", proto, vip, s["scheduler"].get<std::string>(),
                       s["name"].get<std::string>(), s["mode"].get<std::string>());
    else if (kind == list_kind::stats)
      o += fmt::format("{:<4} {:<28} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9}  ({})\n", proto,
                       vip, num(ss, "connections"), num(ss, "packets"), num(ss, "reply_packets"),
                       num(ss, "bytes"), num(ss, "reply_bytes"), num(ss, "active_flows"),
                       num(ss, "inactive_flows"), s["name"].get<std::string>());
    else
      o += fmt::format("{:<4} {:<28} {:>8} {:>8} {:>8} {:>8} {:>8}  ({})\n", proto, vip,
                       rate(ss, ps, "connections", dt), rate(ss, ps, "packets", dt),
                       rate(ss, ps, "reply_packets", dt), rate(ss, ps, "bytes", dt),
                       rate(ss, ps, "reply_bytes", dt), s["name"].get<std::string>());
    const auto& backends = s["backends"];
    for (size_t j = 0; j < backends.size(); ++j) {
      const auto& b = backends[j];
      int port = b["port"].get<int>() ? b["port"].get<int>() : s["port"].get<int>();
      const std::string rip = endpoint(b["address"], port);
      const auto& bs = backend_stats(stats, i, j);
      const json* pb = prev ? &backend_stats(*prev, i, j) : nullptr;
      if (kind == list_kind::plain)
        o += fmt::format("  -> {:<28} {:<8} {:<6} {:<8} {:<10} {}\n", rip,
                         s["mode"].get<std::string>(), b["weight"].get<int>(), shown_state(b, bs),
                         num(bs, "active_flows"), num(bs, "inactive_flows"));
      else if (kind == list_kind::stats)
        o += fmt::format("  -> {:<28} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9}\n", rip,
                         num(bs, "connections"), num(bs, "packets"), 0, num(bs, "bytes"), 0,
                         num(bs, "active_flows"), num(bs, "inactive_flows"));
      else
        o += fmt::format("  -> {:<28} {:>8} {:>8} {:>8} {:>8} {:>8}\n", rip,
                         rate(bs, pb, "connections", dt), rate(bs, pb, "packets", dt), 0,
                         rate(bs, pb, "bytes", dt), 0);
    }
  }
  return o;
}

std::string render_status(const json& st) {
  std::string o;
  o += fmt::format("instance:      {}\n", st.value("instance", std::string("?")));
  o += fmt::format("control plane: pid {}, up {:.0f} s\n", num(st, "pid"),
                   st.value("uptime_s", 0.0));
  o += fmt::format("generation:    {} (shared memory {})\n", num(st, "generation"),
                   num(st, "shm_generation"));
  if (st.contains("publish"))
    o += fmt::format("publications:  {} ({} failed), last {:.3f} ms, max {:.3f} ms\n",
                     num(st["publish"], "count"), num(st["publish"], "failures"),
                     st["publish"].value("last_ms", 0.0), st["publish"].value("max_ms", 0.0));
  o += fmt::format("services:      {}\n", num(st, "services"));
  if (st.contains("dataplane")) {
    const auto& d = st["dataplane"];
    o += fmt::format("dataplane:     {} (pid {}, {} workers)\n",
                     d.value("alive", false) ? "alive" : "not running", d.value("pid", 0),
                     num(d, "workers"));
  }
  if (st.contains("workers"))
    for (const auto& w : st["workers"]) {
      o += fmt::format("  worker {:<3} lcore {:<3} acked generation {} {}", num(w, "worker"),
                       num(w, "lcore"), num(w, "acked_generation"),
                       w.value("in_sync", false) ? "(in sync)" : "(LAGGING)");
      if (w.contains("rx_packets"))
        o += fmt::format("  rx {} handed off {} ({:.1f} %) received {}", num(w, "rx_packets"),
                         num(w, "handoff_out"), 100 * w.value("handoff_fraction", 0.0),
                         num(w, "handoff_in"));
      o += "\n";
    }
  if (st.contains("handoff"))
    o += fmt::format("handoffs:      {} of {} received packets ({:.1f} %) handed to another "
                     "worker\n",
                     num(st["handoff"], "handoff_out"), num(st["handoff"], "rx_packets"),
                     100 * st["handoff"].value("fraction", 0.0));
  o += fmt::format("shm:           {}\nsocket:        {}\nstate file:    {}\n",
                   st.value("shm_path", std::string()), st.value("socket", std::string()),
                   st.value("state_file", std::string()));
  return o;
}

std::string render_top(const json& config, const json& status, const json& stats,
                       const json* prev) {
  std::string o = fmt::format(
      "sluice top - instance {} - generation {} - dataplane {}\n\n",
      config.value("instance", std::string("?")), num(stats, "generation"),
      status.contains("dataplane") && status["dataplane"].value("alive", false) ? "alive" : "down");
  o += render_list(config, stats, prev, list_kind::rate);
  o += "\ndrops by reason (total, per second):\n";
  const double dt = elapsed_s(stats, prev);
  bool any = false;
  if (stats.contains("drops"))
    for (auto it = stats["drops"].begin(); it != stats["drops"].end(); ++it) {
      uint64_t v = it.value().get<uint64_t>();
      if (!v)
        continue;
      any = true;
      const json* pd = prev && prev->contains("drops") ? &(*prev)["drops"] : nullptr;
      o += fmt::format("  {:<24} {:>12} {:>10}\n", it.key(), v,
                       rate(stats["drops"], pd, it.key().c_str(), dt));
    }
  if (!any)
    o += "  (none)\n";
  return o;
}

std::string format_idle(uint64_t ms) {
  if (ms < 1000)
    return fmt::format("{}ms", ms);
  if (ms < 60'000)
    return fmt::format("{:.1f}s", double(ms) / 1000);
  const uint64_t s = ms / 1000;
  if (s < 3600)
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
}

std::string render_conns(const json& flows, bool header) {
  // 3 + 14 (udp_unanswered) + 6 + 3 x 21 + 6 separators: 92 columns, 8 left
  // for the service name.
  constexpr const char* row = "{:<3} {:<14} {:>6} {:<21} {:<21} {:<21} {}\n";
  std::string o;
  if (header)
    o += fmt::format(row, "PRO", "STATE", "IDLE", "CLIENT", "VIP", "BACKEND", "SERVICE");
  for (const auto& f : flows)
    o += fmt::format(row, f.value("proto", ""), f.value("state", ""),
                     format_idle(f.value("idle_ms", uint64_t(0))), f.value("client", ""),
                     f.value("vip", ""), f.value("backend", ""), f.value("service", ""));
  return o;
}

} // namespace sluice::ctl
