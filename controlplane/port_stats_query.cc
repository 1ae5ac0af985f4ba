#include "port_stats_query.h"

#include <fmt/format.h>

#include "dataplane_telemetry.h"

namespace sluice::cp {

using json = nlohmann::json;

namespace {

constexpr const char* xsk_fields[] = {
    "rx_dropped",   "rx_invalid_descs",         "tx_invalid_descs",
    "rx_ring_full", "rx_fill_ring_empty_descs", "tx_ring_empty_descs"};

uint64_t at(const json& reply, const std::string& array, size_t i) {
  auto it = reply.find(array);
  if (it == reply.end() || !it->is_array() || i >= it->size() || !(*it)[i].is_number())
    return 0;
  return (*it)[i].get<uint64_t>();
}

} // namespace

json port_entry_of(const json& reply) {
  json p;
  p["port"] = reply.value("port", 0);
  p["name"] = reply.value("name", std::string());
  p["driver"] = reply.value("driver", std::string());
  p["role"] = reply.value("role", std::string());
  p["steering"] = reply.value("steering", std::string("unknown"));
  p["dnat_steering"] = reply.value("dnat_steering", std::string("unknown"));
  p["stats"] = reply.value("stats", json::object());
  const bool xsk = reply.contains("xsk_rx_dropped");
  size_t n = 0;
  for (const char* a : {"q_ipackets", "q_opackets"})
    if (reply.contains(a) && reply[a].is_array())
      n = std::max(n, reply[a].size());
  if (xsk)
    n = std::max(n, reply["xsk_rx_dropped"].size());
  json queues = json::array();
  for (size_t q = 0; q < n; ++q) {
    json e = {{"queue", q},
              {"ipackets", at(reply, "q_ipackets", q)},
              {"ibytes", at(reply, "q_ibytes", q)},
              {"errors", at(reply, "q_errors", q)},
              {"opackets", at(reply, "q_opackets", q)},
              {"obytes", at(reply, "q_obytes", q)}};
    if (xsk) {
      json x = json::object();
      for (const char* f : xsk_fields)
        x[f] = at(reply, std::string("xsk_") + f, q);
      e["xsk"] = x;
    }
    queues.push_back(e);
  }
  p["queues"] = queues;
  if (xsk)
    p["xsk_sockets_found"] = reply.value("xsk_sockets_found", 0);
  p["xstats"] = reply.value("xstats", json::object());
  return p;
}

result<json> query_port_stats(const std::string& shm_path, std::chrono::milliseconds timeout) {
  auto list = query_dataplane_telemetry(shm_path, "/sluice/ports", timeout);
  if (!list)
    return list.err();
  if (!list->is_object() || !list->contains("ports") || !(*list)["ports"].is_array())
    return make_error("the dataplane does not export port statistics (/sluice/ports): is it "
                      "older than this control plane?");
  json ports = json::array();
  for (const auto& id : (*list)["ports"]) {
    if (!id.is_number_integer())
      continue;
    auto r =
        query_dataplane_telemetry(shm_path, fmt::format("/sluice/port,{}", id.get<int>()), timeout);
    if (!r)
      return r.err();
    if (!r->is_object())
      return make_error(fmt::format("port {}: the dataplane gave no statistics", id.get<int>()));
    ports.push_back(port_entry_of(*r));
  }
  return json{{"ports", ports}};
}

} // namespace sluice::cp
