#include "run_stats.h"

#include <fmt/format.h>

#include "mode_names.h"

namespace sluice::pktgen {

namespace {

constexpr const char* failure_names[] = {
#define X(n, h) #n,
    PKTGEN_CHECK_FAILURES(X)
#undef X
};

bool counts_for_loss(item_type t) {
  return t == item_type::established || t == item_type::churn;
}

double rate(uint64_t a, uint64_t b, double dt) {
  return dt > 0 ? double(b - a) / dt : 0;
}

// L2 bits on the wire as the bps figures count them: frame plus 4-byte FCS.
uint64_t wire_bits(uint64_t packets, uint64_t bytes) {
  return (bytes + 4 * packets) * 8;
}

nlohmann::json latency_json(const latency_histogram& h, double unit_ns) {
  return {{"samples", h.count()},
          {"p50", double(h.quantile(0.5)) / unit_ns},
          {"p99", double(h.quantile(0.99)) / unit_ns},
          {"p99_9", double(h.quantile(0.999)) / unit_ns},
          {"max", double(h.max()) / unit_ns}};
}

nlohmann::json stream_json(const stream_stats& st, double secs) {
  uint64_t lost = st.tx_packets > st.rx_packets ? st.tx_packets - st.rx_packets : 0;
  return {{"tx_packets", st.tx_packets},
          {"rx_packets", st.rx_packets},
          {"tx_pps", secs > 0 ? double(st.tx_packets) / secs : 0},
          {"rx_pps", secs > 0 ? double(st.rx_packets) / secs : 0},
          {"tx_bps", secs > 0 ? double(wire_bits(st.tx_packets, st.tx_bytes)) / secs : 0},
          {"rx_bps", secs > 0 ? double(wire_bits(st.rx_packets, st.rx_bytes)) / secs : 0},
          {"lost", lost},
          {"seq_gaps", st.seq.gaps},
          {"late", st.seq.late},
          {"latency_us", latency_json(st.latency, 1000.0)}};
}

} // namespace

const char* check_failure_name(check_failure f) {
  return failure_names[size_t(f)];
}

uint64_t run_stats::mismatches() const {
  uint64_t n = 0;
  for (auto v : check_failures)
    n += v;
  return n;
}

uint64_t failed_connections(const item_stats& s) {
  uint64_t done = s.conns_completed + s.conns_reset;
  return s.conns_opened > done ? s.conns_opened - done : 0;
}

std::string per_second_line(const run_stats& a, const run_stats& b, double dt) {
  const auto& c0 = a.port[0];
  const auto& c1 = b.port[0];
  const auto& b0 = a.port[1];
  const auto& b1 = b.port[1];
  uint64_t opened = 0, done = 0, reset = 0, lost = 0;
  for (size_t i = 0; i < b.items.size(); ++i) {
    opened += b.items[i].conns_opened - a.items[i].conns_opened;
    done += b.items[i].conns_completed - a.items[i].conns_completed;
    reset += b.items[i].conns_reset - a.items[i].conns_reset;
  }
  uint64_t tx = 0, rx = 0;
  for (const auto& it : b.items) {
    tx += it.to_backend.tx_packets + it.to_client.tx_packets;
    rx += it.to_backend.rx_packets + it.to_client.rx_packets;
  }
  lost = tx > rx ? tx - rx : 0;
  return fmt::format(
      "t={:.0f}s client port tx {:.3f} Mpps {:.3f} Gbps rx {:.3f} Mpps | backend port tx {:.3f} "
      "Mpps rx {:.3f} Mpps {:.3f} Gbps | conns/s opened {:.0f} completed {:.0f} reset {:.0f} | "
      "in flight or lost {} | mismatches {}",
      b.elapsed_s, rate(c0.tx_packets, c1.tx_packets, dt) / 1e6,
      double(wire_bits(c1.tx_packets, c1.tx_bytes) - wire_bits(c0.tx_packets, c0.tx_bytes)) / dt /
          1e9,
      rate(c0.rx_packets, c1.rx_packets, dt) / 1e6, rate(b0.tx_packets, b1.tx_packets, dt) / 1e6,
      rate(b0.rx_packets, b1.rx_packets, dt) / 1e6,
      double(wire_bits(b1.rx_packets, b1.rx_bytes) - wire_bits(b0.rx_packets, b0.rx_bytes)) / dt /
          1e9,
      double(opened) / dt, double(done) / dt, double(reset) / dt, lost, b.mismatches());
}

nlohmann::json summary_json(const profile& p, const run_stats& s, double scale) {
  const double secs = s.elapsed_s;
  nlohmann::json items = nlohmann::json::array();
  uint64_t lost = 0, failed = 0, legit_opened = 0, legit_done = 0;
  bool flooded = false;
  for (size_t i = 0; i < p.items.size(); ++i) {
    const auto& pi = p.items[i];
    const auto& st = s.items[i];
    const auto& svc = p.services[pi.service];
    nlohmann::json j = {{"type", item_type_name(pi.type)},
                        {"service", svc.name},
                        {"mode", std::string(fwd_mode_name(svc.mode))},
                        {"offered_rate", pi.rate * scale},
                        {"to_backend", stream_json(st.to_backend, secs)},
                        {"to_client", stream_json(st.to_client, secs)}};
    if (pi.type == item_type::established)
      j["flows"] = pi.flows;
    if (pi.type == item_type::churn) {
      uint64_t f = failed_connections(st);
      j["connections"] = {
          {"opened", st.conns_opened},
          {"completed", st.conns_completed},
          {"reset", st.conns_reset},
          {"failed", f},
          {"opened_per_s", secs > 0 ? double(st.conns_opened) / secs : 0},
          {"completed_per_s", secs > 0 ? double(st.conns_completed) / secs : 0},
          {"connect_latency_us", latency_json(st.connect_latency, 1.0)},
      };
      failed += f;
      legit_opened += st.conns_opened;
      legit_done += st.conns_completed;
    }
    if (counts_for_loss(pi.type)) {
      for (const stream_stats* x : {&st.to_backend, &st.to_client})
        lost += x->tx_packets > x->rx_packets ? x->tx_packets - x->rx_packets : 0;
    } else {
      flooded = true;
      j["delivered_share"] = st.to_backend.tx_packets ? double(st.to_backend.rx_packets) /
                                                            double(st.to_backend.tx_packets)
                                                      : 0.0;
    }
    items.push_back(std::move(j));
  }
  nlohmann::json fails = nlohmann::json::object();
  for (size_t f = 0; f < size_t(check_failure::count); ++f)
    if (s.check_failures[f])
      fails[failure_names[f]] = s.check_failures[f];
  auto port = [&](const port_stats& ps) {
    return nlohmann::json{
        {"tx_packets", ps.tx_packets},
        {"rx_packets", ps.rx_packets},
        {"tx_pps", secs > 0 ? double(ps.tx_packets) / secs : 0},
        {"rx_pps", secs > 0 ? double(ps.rx_packets) / secs : 0},
        {"tx_bps", secs > 0 ? double(wire_bits(ps.tx_packets, ps.tx_bytes)) / secs : 0},
        {"rx_bps", secs > 0 ? double(wire_bits(ps.rx_packets, ps.rx_bytes)) / secs : 0},
        {"tx_dropped", ps.tx_dropped},
    };
  };
  nlohmann::json j = {
      {"profile", p.name},
      {"scale", scale},
      {"duration_s", secs},
      {"client_port", port(s.port[0])},
      {"backend_port", port(s.port[1])},
      {"items", items},
      {"lost", lost},
      {"failed_connections", failed},
      {"checked", s.checked},
      {"mismatches", s.mismatches()},
      {"mismatch_reasons", fails},
      {"foreign", s.foreign},
      {"flood_replies", s.flood_replies},
      {"alloc_failures", s.alloc_failures},
      {"zero_loss", lost == 0 && failed == 0 && s.mismatches() == 0},
  };
  if (flooded && legit_opened > 0)
    j["legit_completed_share"] = double(legit_done) / double(legit_opened);
  return j;
}

} // namespace sluice::pktgen
