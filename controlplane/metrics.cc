#include "metrics.h"

#include <fmt/format.h>

#include "counters.h"
#include "ip_addr.h"
#include "version.h"

namespace sluice::cp {

namespace {

void head(std::string& o, const char* name, const char* type, std::string_view help) {
  o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

std::string svc_labels(const named_service& s) {
  return fmt::format("service=\"{}\",vip=\"{}\",port=\"{}\",proto=\"{}\"", s.name,
                     format_ip(s.cfg.vip), s.cfg.port, proto_name(s.cfg.proto));
}

std::string be_labels(const named_service& s, const backend_config& b) {
  return fmt::format("service=\"{}\",backend=\"{}\"", s.name,
                     format_endpoint(b.addr, b.port ? b.port : s.cfg.port));
}

} // namespace

std::string render_metrics(const metrics_input& in) {
  std::string o;
  const auto& c = *in.config;
  const auto& k = *in.counters;
  head(o, "sluice_table_generation", "gauge", "generation of the published tables");
  o += fmt::format("sluice_table_generation {}\n", in.generation);
  head(o, "sluice_publish_total", "counter", "publications by this control plane");
  o += fmt::format("sluice_publish_total {}\n", in.publishes->count);
  head(o, "sluice_publish_failures_total", "counter", "publications that failed or timed out");
  o += fmt::format("sluice_publish_failures_total {}\n", in.publishes->failures);
  head(o, "sluice_soft_state_updates_total", "counter",
       "response-time hints and slow-start weights written in place (no publication)");
  o += fmt::format("sluice_soft_state_updates_total {}\n", in.publishes->soft_updates);
  head(o, "sluice_publish_latency_seconds_last", "gauge",
       "publish to all-workers-acknowledged time of the last publication");
  o += fmt::format("sluice_publish_latency_seconds_last {:.6f}\n", in.publishes->last_ms / 1e3);
  head(o, "sluice_publish_latency_seconds_max", "gauge", "largest publish latency since start");
  o += fmt::format("sluice_publish_latency_seconds_max {:.6f}\n", in.publishes->max_ms / 1e3);
  head(o, "sluice_dataplane_up", "gauge", "1 when the dataplane process is alive");
  o += fmt::format("sluice_dataplane_up {}\n", in.dataplane_alive ? 1 : 0);
  head(o, "sluice_workers_live", "gauge", "live dataplane workers");
  o += fmt::format("sluice_workers_live {}\n", in.live_workers);
  head(o, "sluice_workers_lagging", "gauge", "live workers behind the published generation");
  o += fmt::format("sluice_workers_lagging {}\n", in.lagging_workers);
  head(o, "sluice_controlplane_uptime_seconds", "gauge", "seconds since the control plane started");
  o += fmt::format("sluice_controlplane_uptime_seconds {:.3f}\n", in.uptime_s);

  head(o, "sluice_build_info", "gauge", "always 1; labels name the build");
  o += fmt::format("sluice_build_info{{version=\"{}\",component=\"controlplane\"}} 1\n",
                   SLUICE_VERSION);

  head(o, "sluice_drops_total", "counter", "packets dropped, by reason and worker");
  for (const auto& w : k.workers)
    for (size_t i = 0; i < drop_reason_count; ++i)
      o += fmt::format("sluice_drops_total{{reason=\"{}\",worker=\"{}\"}} {}\n",
                       drop_reason_names[i], w.worker, w.drops[i]);
  for (size_t i = 0; i < worker_counter_count; ++i) {
    const bool gauge = worker_counter_names[i] == "flows_active";
    const std::string name =
        fmt::format("sluice_worker_{}{}", worker_counter_names[i], gauge ? "" : "_total");
    head(o, name.c_str(), gauge ? "gauge" : "counter", worker_counter_help[i]);
    for (const auto& w : k.workers)
      o += fmt::format("{}{{worker=\"{}\"}} {}\n", name, w.worker, w.counters[i]);
  }
  // Whether steering works on this NIC: 0 for DSR and nat with hardware RSS
  // or rte_flow, about (n-1)/n of dnat's packets with software handoff.
  head(o, "sluice_worker_handoff_ratio", "gauge",
       "share of the worker's received packets handed to another worker since the dataplane "
       "started (handoff_out / rx_packets)");
  for (const auto& w : k.workers)
    o += fmt::format("sluice_worker_handoff_ratio{{worker=\"{}\"}} {:.6f}\n", w.worker,
                     handoff_fraction(w.counters));
  head(o, "sluice_handoff_ratio", "gauge",
       "share of all received packets handed to another worker since the dataplane started");
  o += fmt::format("sluice_handoff_ratio {:.6f}\n", handoff_fraction(k.worker));

  struct svc_field {
    const char* name;
    const char* type;
    const char* help;
    uint64_t abi::service_counters::*f;
  };
  static constexpr svc_field svc_fields[] = {
      {"sluice_service_packets_total", "counter", "client-to-backend packets",
       &abi::service_counters::packets},
      {"sluice_service_bytes_total", "counter", "client-to-backend bytes",
       &abi::service_counters::bytes},
      {"sluice_service_reply_packets_total", "counter", "backend-to-client packets (NAT modes)",
       &abi::service_counters::reply_packets},
      {"sluice_service_reply_bytes_total", "counter", "backend-to-client bytes (NAT modes)",
       &abi::service_counters::reply_bytes},
      {"sluice_service_connections_total", "counter", "new flows",
       &abi::service_counters::new_flows},
      {"sluice_service_no_backend_total", "counter", "new flows refused: no backend",
       &abi::service_counters::no_backend},
      {"sluice_service_limited_total", "counter",
       "new flows refused by the client rate limit or the worker's new-flow budget",
       &abi::service_counters::limited},
      {"sluice_service_active_flows", "gauge",
       "tracked flows not closing (IPVS ActiveConn: syn, syn_recv, established, adopted, udp)",
       &abi::service_counters::active_flows},
  };
  for (const auto& f : svc_fields) {
    head(o, f.name, f.type, f.help);
    for (size_t i = 0; i < c.services.size(); ++i)
      o += fmt::format("{}{{{}}} {}\n", f.name, svc_labels(c.services[i]), k.services[i].*f.f);
  }
  struct be_field {
    const char* name;
    const char* type;
    const char* help;
    uint64_t abi::backend_counters::*f;
  };
  static constexpr be_field be_fields[] = {
      {"sluice_backend_packets_total", "counter", "packets sent to the backend",
       &abi::backend_counters::packets},
      {"sluice_backend_bytes_total", "counter", "bytes sent to the backend",
       &abi::backend_counters::bytes},
      {"sluice_backend_connections_total", "counter", "new flows",
       &abi::backend_counters::new_flows},
      {"sluice_backend_active_flows", "gauge",
       "tracked flows not closing (IPVS ActiveConn: syn, syn_recv, established, adopted, udp)",
       &abi::backend_counters::active_flows},
      {"sluice_backend_inactive_flows", "gauge",
       "tracked flows closing (IPVS InActConn: fin, last_ack, time_wait, closed)",
       &abi::backend_counters::inactive_flows},
      {"sluice_backend_syn_unanswered_total", "counter", "SYNs that got no SYN-ACK (NAT modes)",
       &abi::backend_counters::syn_unanswered},
      {"sluice_backend_rst_total", "counter", "RSTs from the backend (NAT modes)",
       &abi::backend_counters::rst_from_backend},
      {"sluice_backend_conn_limited_total", "counter",
       "new flows that found the backend at its max_conns cap (sent elsewhere)",
       &abi::backend_counters::conn_limited},
      {"sluice_backend_nat_port_exhausted_total", "counter",
       "nat: new flows refused, no free local port for the backend",
       &abi::backend_counters::nat_port_exhausted},
  };
  for (const auto& f : be_fields) {
    head(o, f.name, f.type, f.help);
    for (size_t i = 0; i < c.services.size(); ++i)
      for (size_t j = 0; j < c.services[i].cfg.backends.size(); ++j)
        o += fmt::format("{}{{{}}} {}\n", f.name,
                         be_labels(c.services[i], c.services[i].cfg.backends[j]),
                         k.backends[i][j].*f.f);
  }
  // The dataplane keeps the inactive gauge per backend only.
  head(o, "sluice_service_inactive_flows", "gauge",
       "tracked flows closing (IPVS InActConn): the sum of the service's backends'");
  for (size_t i = 0; i < c.services.size(); ++i) {
    uint64_t sum = 0;
    for (const auto& b : k.backends[i])
      sum += b.inactive_flows;
    o += fmt::format("sluice_service_inactive_flows{{{}}} {}\n", svc_labels(c.services[i]), sum);
  }
  head(o, "sluice_backend_weight", "gauge", "configured weight");
  for (const auto& s : c.services)
    for (const auto& b : s.cfg.backends)
      o += fmt::format("sluice_backend_weight{{{}}} {}\n", be_labels(s, b), b.weight);
  head(o, "sluice_backend_up", "gauge",
       "1 when the backend takes new flows: configured up and passing its health checks "
       "(labels: the effective and the configured state)");
  for (size_t i = 0; i < c.services.size(); ++i)
    for (size_t j = 0; j < c.services[i].cfg.backends.size(); ++j) {
      const auto& b = c.services[i].cfg.backends[j];
      auto eff = b.state;
      if (in.effective && i < in.effective->size() && j < (*in.effective)[i].backends.size())
        eff = (*in.effective)[i].backends[j].state;
      o += fmt::format("sluice_backend_up{{{},state=\"{}\",configured_state=\"{}\"}} {}\n",
                       be_labels(c.services[i], b), state_name(eff), state_name(b.state),
                       eff == abi::backend_state::up ? 1 : 0);
    }
  return o;
}

} // namespace sluice::cp
