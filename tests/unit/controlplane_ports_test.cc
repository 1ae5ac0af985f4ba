// Port statistics in the control plane: a /sluice/port reply reshaped into the
// API's port entry (port_stats_query.h), its Prometheus text (metrics_ports.h)
// and the `sluicectl ports` table (ctl_ports.h). Pure functions of JSON: no
// dataplane, no sockets.
#include <catch2/catch_test_macros.hpp>
#include <string>

#include "ctl_ports.h"
#include "metrics_ports.h"
#include "port_stats_query.h"

using namespace sluice::cp;
using json = nlohmann::json;

namespace {

// What dataplane/port_stats.cc answers for a one-queue net_af_xdp port.
json af_xdp_reply() {
  return json::parse(R"({
    "port": 0, "name": "net_af_xdp0", "driver": "net_af_xdp", "role": "port",
    "steering": "hardware-rss", "dnat_steering": "rte_flow", "rx_queues": 1, "tx_queues": 1,
    "stats": {"ipackets": 1000, "opackets": 990, "ibytes": 64000, "obytes": 63000,
              "imissed": 7, "ierrors": 0, "oerrors": 1, "rx_nombuf": 2},
    "q_ipackets": [1000], "q_ibytes": [64000], "q_errors": [0],
    "q_opackets": [990], "q_obytes": [63000],
    "xstats": {"rx_good_packets": 1000, "rx_q0_packets": 1000},
    "xsk_sockets_found": 1,
    "xsk_rx_dropped": [7], "xsk_rx_invalid_descs": [0], "xsk_tx_invalid_descs": [0],
    "xsk_rx_ring_full": [41], "xsk_rx_fill_ring_empty_descs": [3], "xsk_tx_ring_empty_descs": [5]
  })");
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

} // namespace

TEST_CASE("a port reply becomes one entry with per-queue counters and the socket's drops") {
  json p = port_entry_of(af_xdp_reply());
  CHECK(p["name"] == "net_af_xdp0");
  CHECK(p["steering"] == "hardware-rss");
  CHECK(p["dnat_steering"] == "rte_flow");
  CHECK(port_entry_of(json::object())["steering"] == "unknown"); // an older dataplane
  CHECK(p["stats"]["imissed"] == 7);
  REQUIRE(p["queues"].size() == 1);
  CHECK(p["queues"][0]["ipackets"] == 1000);
  CHECK(p["queues"][0]["opackets"] == 990);
  CHECK(p["queues"][0]["xsk"]["rx_ring_full"] == 41);
  CHECK(p["queues"][0]["xsk"]["rx_fill_ring_empty_descs"] == 3);
  CHECK(p["xstats"]["rx_q0_packets"] == 1000);
}

TEST_CASE("a port without AF_XDP sockets has no xsk block") {
  json r = af_xdp_reply();
  for (const char* k :
       {"xsk_sockets_found", "xsk_rx_dropped", "xsk_rx_invalid_descs", "xsk_tx_invalid_descs",
        "xsk_rx_ring_full", "xsk_rx_fill_ring_empty_descs", "xsk_tx_ring_empty_descs"})
    r.erase(k);
  json p = port_entry_of(r);
  REQUIRE(p["queues"].size() == 1);
  CHECK_FALSE(p["queues"][0].contains("xsk"));
}

TEST_CASE("port metrics: counters with _total, port and queue labels, steer counters") {
  json answer = {{"ports", json::array({port_entry_of(af_xdp_reply())})}};
  json steer = {{"iface", "lb0"}, {"counters", {{"redirected", 12}, {"passed_host", 4}}}};
  std::string m = render_port_metrics(&answer, &steer);
  CHECK(has_line(m, "sluice_port_stats_up 1"));
  CHECK(has_line(m, "# TYPE sluice_port_rx_missed_total counter"));
  CHECK(has_line(m, R"(sluice_port_rx_missed_total{port="0",name="net_af_xdp0"} 7)"));
  CHECK(has_line(m, R"(sluice_port_rx_nombuf_total{port="0",name="net_af_xdp0"} 2)"));
  CHECK(has_line(
      m, R"(sluice_port_queue_rx_packets_total{port="0",name="net_af_xdp0",queue="0"} 1000)"));
  CHECK(has_line(
      m, R"(sluice_port_xsk_rx_ring_full_total{port="0",name="net_af_xdp0",queue="0"} 41)"));
  CHECK(has_line(
      m, R"(sluice_port_xstats_total{port="0",name="net_af_xdp0",xstat="rx_q0_packets"} 1000)"));
  CHECK(has_line(m, R"(sluice_xdp_steer_packets_total{iface="lb0",counter="passed_host"} 4)"));
  CHECK(has_line(
      m,
      R"(sluice_port_steering_info{port="0",name="net_af_xdp0",steering="hardware-rss",dnat_steering="rte_flow"} 1)"));
  // Every family is announced once, and every counter family ends in _total.
  size_t pos = 0;
  while ((pos = m.find("# TYPE ", pos)) != std::string::npos) {
    auto end = m.find('\n', pos);
    std::string line = m.substr(pos, end - pos);
    if (line.size() > 8 && line.substr(line.size() - 8) == " counter")
      CHECK(line.find("_total counter") != std::string::npos);
    pos = end;
  }
}

TEST_CASE("port metrics when the dataplane does not answer") {
  std::string m = render_port_metrics(nullptr, nullptr);
  CHECK(has_line(m, "sluice_port_stats_up 0"));
  CHECK(m.find("sluice_port_rx_packets_total") == std::string::npos);
  CHECK(m.find("sluice_xdp_steer") == std::string::npos);
}

TEST_CASE("sluicectl ports shows the loss counters, the socket's drops and vip_steer") {
  json answer = {
      {"ports", json::array({port_entry_of(af_xdp_reply())})},
      {"steer", {{"iface", "lb0"}, {"program_id", 42}, {"counters", {{"redirected", 12}}}}}};
  std::string t = sluice::ctl::render_ports(answer, true);
  CHECK(t.find("port 0 net_af_xdp0 (driver net_af_xdp, role port)\n"
               "  steering hardware-rss, dnat steering rte_flow\n") != std::string::npos);
  CHECK(t.find("imissed 7  ierrors 0  oerrors 1  rx_nombuf 2") != std::string::npos);
  CHECK(t.find("XSK_RX_FULL") != std::string::npos);
  CHECK(t.find("41") != std::string::npos);
  CHECK(t.find("rx_q0_packets") != std::string::npos);
  CHECK(t.find("vip_steer on lb0 (program id 42)") != std::string::npos);
}
