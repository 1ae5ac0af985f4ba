#include "ctl_ports.h"

#include <fmt/format.h>

namespace sluice::ctl {

using json = nlohmann::json;

namespace {

uint64_t u64(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

} // namespace

std::string render_ports(const json& a, bool xstats) {
  std::string o;
  if (!a.value("fresh", true))
    o += fmt::format("warning: the dataplane did not answer the latest query ({}); "
                     "values are {:.1f} s old\n",
                     a.value("stale_reason", std::string("no reason given")),
                     a.value("age_s", -1.0));
  for (const auto& p : a.value("ports", json::array())) {
    const json st = p.value("stats", json::object());
    o += fmt::format("port {} {} (driver {}, role {})\n", p.value("port", 0),
                     p.value("name", std::string()), p.value("driver", std::string()),
                     p.value("role", std::string()));
    o += fmt::format("  steering {}, dnat steering {}\n",
                     p.value("steering", std::string("unknown")),
                     p.value("dnat_steering", std::string("unknown")));
    o += fmt::format("  rx {} packets {} bytes  tx {} packets {} bytes\n", u64(st, "ipackets"),
                     u64(st, "ibytes"), u64(st, "opackets"), u64(st, "obytes"));
    o += fmt::format("  imissed {}  ierrors {}  oerrors {}  rx_nombuf {}\n", u64(st, "imissed"),
                     u64(st, "ierrors"), u64(st, "oerrors"), u64(st, "rx_nombuf"));
    const json queues = p.value("queues", json::array());
    const bool xsk = !queues.empty() && queues[0].contains("xsk");
    o += fmt::format("  {:>5} {:>14} {:>14} {:>10}", "QUEUE", "RX_PACKETS", "TX_PACKETS",
                     "RX_ERRORS");
    if (xsk)
      o += fmt::format(" {:>12} {:>12} {:>16} {:>12}", "XSK_DROPPED", "XSK_RX_FULL",
                       "XSK_FILL_EMPTY", "XSK_INVALID");
    o += "\n";
    for (const auto& q : queues) {
      o += fmt::format("  {:>5} {:>14} {:>14} {:>10}", q.value("queue", 0), u64(q, "ipackets"),
                       u64(q, "opackets"), u64(q, "errors"));
      if (xsk) {
        const json x = q.value("xsk", json::object());
        o += fmt::format(" {:>12} {:>12} {:>16} {:>12}", u64(x, "rx_dropped"),
                         u64(x, "rx_ring_full"), u64(x, "rx_fill_ring_empty_descs"),
                         u64(x, "rx_invalid_descs") + u64(x, "tx_invalid_descs"));
      }
      o += "\n";
    }
    if (xsk && p.value("xsk_sockets_found", 0) < int(queues.size()))
      o += "  (some AF_XDP sockets were not identified: their XSK_ columns read 0)\n";
    if (xstats) {
      o += "  xstats (non-zero):\n";
      const json x = p.value("xstats", json::object());
      for (const auto& [k, v] : x.items())
        o += fmt::format("    {:<40} {}\n", k, v.is_number() ? v.get<uint64_t>() : 0);
    }
  }
  if (a.contains("steer")) {
    const json& s = a["steer"];
    if (s.contains("error")) {
      o += fmt::format("vip_steer on {}: {}\n", s.value("iface", std::string()),
                       s.value("error", std::string()));
    } else {
      o += fmt::format("vip_steer on {} (program id {}):\n", s.value("iface", std::string()),
                       s.value("program_id", 0));
      const json counters = s.value("counters", json::object());
      for (const auto& [k, v] : counters.items())
        o += fmt::format("  {:<20} {}\n", k, v.is_number() ? v.get<uint64_t>() : 0);
    }
  }
  return o;
}

} // namespace sluice::ctl
