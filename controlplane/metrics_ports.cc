#include "metrics_ports.h"

#include <fmt/format.h>

namespace sluice::cp {

using json = nlohmann::json;

namespace {

void head(std::string& o, const std::string& name, const char* type, std::string_view help) {
  o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// Label values: backslash, double quote and newline escaped.
std::string esc(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"')
      o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

uint64_t u64(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

std::string port_labels(const json& p) {
  return fmt::format("port=\"{}\",name=\"{}\"", p.value("port", 0),
                     esc(p.value("name", std::string())));
}

struct field {
  const char* metric; // without the sluice_port_ prefix
  const char* key;
  const char* help;
};

constexpr field port_fields[] = {
    {"rx_packets_total", "ipackets", "packets received (rte_eth_stats ipackets)"},
    {"tx_packets_total", "opackets", "packets sent (rte_eth_stats opackets)"},
    {"rx_bytes_total", "ibytes", "bytes received"},
    {"tx_bytes_total", "obytes", "bytes sent"},
    {"rx_missed_total", "imissed",
     "packets the NIC dropped because the RX queue was full (imissed; for AF_XDP the socket's "
     "rx_dropped)"},
    {"rx_errors_total", "ierrors", "erroneous received packets"},
    {"tx_errors_total", "oerrors", "failed transmissions"},
    {"rx_nombuf_total", "rx_nombuf", "RX mbuf allocation failures"},
};

constexpr field queue_fields[] = {
    {"queue_rx_packets_total", "ipackets", "packets received on the RX queue"},
    {"queue_rx_bytes_total", "ibytes", "bytes received on the RX queue"},
    {"queue_rx_errors_total", "errors", "packets dropped on the RX queue"},
    {"queue_tx_packets_total", "opackets", "packets sent on the TX queue"},
    {"queue_tx_bytes_total", "obytes", "bytes sent on the TX queue"},
};

constexpr field xsk_fields[] = {
    {"xsk_rx_dropped_total", "rx_dropped",
     "frames the AF_XDP socket dropped (no buffer in the fill ring, ...)"},
    {"xsk_rx_ring_full_total", "rx_ring_full",
     "frames dropped because the AF_XDP socket's RX ring was full (raise the ring size)"},
    {"xsk_rx_fill_ring_empty_total", "rx_fill_ring_empty_descs",
     "times the AF_XDP fill ring was empty when a frame arrived"},
    {"xsk_rx_invalid_descs_total", "rx_invalid_descs", "AF_XDP RX descriptors dropped as invalid"},
    {"xsk_tx_invalid_descs_total", "tx_invalid_descs", "AF_XDP TX descriptors dropped as invalid"},
    {"xsk_tx_ring_empty_total", "tx_ring_empty_descs",
     "times the AF_XDP TX ring was empty when the kernel looked"},
};

} // namespace

std::string render_port_metrics(const json* ports, const json* steer) {
  port_stats_snapshot s;
  if (ports)
    s.ports = *ports;
  s.up = ports != nullptr;
  return render_port_metrics(s, steer, false);
}

std::string render_port_metrics(const port_stats_snapshot& snap, const json* steer, bool age) {
  std::string o;
  const json* ports = snap.ports ? &*snap.ports : nullptr;
  const bool have = ports && ports->contains("ports") && (*ports)["ports"].is_array();
  head(o, "sluice_port_stats_up", "gauge",
       "1 when the dataplane answered the latest port statistics query");
  o += fmt::format("sluice_port_stats_up {}\n", snap.up && have ? 1 : 0);
  if (age && have) {
    head(o, "sluice_port_stats_age_seconds", "gauge",
         "seconds since the sluice_port_* values were read from the dataplane");
    o += fmt::format("sluice_port_stats_age_seconds {:.3f}\n", snap.age_s);
  }
  if (have) {
    const json& list = (*ports)["ports"];
    head(o, "sluice_port_info", "gauge", "a dataplane port: driver and role (always 1)");
    for (const auto& p : list)
      o += fmt::format("sluice_port_info{{{},driver=\"{}\",role=\"{}\"}} 1\n", port_labels(p),
                       esc(p.value("driver", std::string())), esc(p.value("role", std::string())));
    head(o, "sluice_port_steering_info", "gauge",
         "how packets reach their owner worker: steering none|hardware-rss|software, "
         "dnat_steering none|rte_flow|handoff (always 1)");
    for (const auto& p : list)
      o += fmt::format("sluice_port_steering_info{{{},steering=\"{}\",dnat_steering=\"{}\"}} 1\n",
                       port_labels(p), esc(p.value("steering", std::string("unknown"))),
                       esc(p.value("dnat_steering", std::string("unknown"))));
    for (const auto& f : port_fields) {
      const std::string name = std::string("sluice_port_") + f.metric;
      head(o, name, "counter", f.help);
      for (const auto& p : list)
        o += fmt::format("{}{{{}}} {}\n", name, port_labels(p),
                         u64(p.value("stats", json::object()), f.key));
    }
    for (const auto& f : queue_fields) {
      const std::string name = std::string("sluice_port_") + f.metric;
      head(o, name, "counter", f.help);
      for (const auto& p : list)
        for (const auto& q : p.value("queues", json::array()))
          o += fmt::format("{}{{{},queue=\"{}\"}} {}\n", name, port_labels(p), q.value("queue", 0),
                           u64(q, f.key));
    }
    for (const auto& f : xsk_fields) {
      const std::string name = std::string("sluice_port_") + f.metric;
      head(o, name, "counter", f.help);
      for (const auto& p : list)
        for (const auto& q : p.value("queues", json::array()))
          if (q.contains("xsk"))
            o += fmt::format("{}{{{},queue=\"{}\"}} {}\n", name, port_labels(p),
                             q.value("queue", 0), u64(q["xsk"], f.key));
    }
    head(o, "sluice_port_xstats_total", "counter",
         "the driver's non-zero extended statistics (rte_eth_xstats), by xstat name");
    for (const auto& p : list) {
      const json x = p.value("xstats", json::object());
      for (const auto& [k, v] : x.items())
        if (v.is_number())
          o += fmt::format("sluice_port_xstats_total{{{},xstat=\"{}\"}} {}\n", port_labels(p),
                           esc(k), v.get<uint64_t>());
    }
  }
  if (steer && steer->contains("counters")) {
    head(o, "sluice_xdp_steer_packets_total", "counter",
         "vip_steer decisions on the interface, by counter (summed over CPUs)");
    const std::string iface = esc(steer->value("iface", std::string()));
    for (const auto& [k, v] : (*steer)["counters"].items())
      if (v.is_number())
        o += fmt::format("sluice_xdp_steer_packets_total{{iface=\"{}\",counter=\"{}\"}} {}\n",
                         iface, esc(k), v.get<uint64_t>());
  }
  return o;
}

} // namespace sluice::cp
