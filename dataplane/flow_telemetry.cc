#include "flow_telemetry.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>

#include <rte_telemetry.h>

#include "flow_table.h"

namespace sluice::dp {

namespace {

// The telemetry thread is the only caller; the mutex only orders it against
// (un)registration from the main thread.
std::mutex g_mu;
std::vector<pipeline*> g_pipelines;
// RCU reader slot of the flow tables used by the telemetry thread.
constexpr uint32_t telemetry_reader_id = 0;
// DPDK telemetry replies are limited to 16 KiB of JSON.
constexpr size_t max_rows = 100;

std::string state_name(uint8_t s) {
  return std::string(flow_state_name(s));
}

int conns_cmd(const char*, const char* params, rte_tel_data* d) {
  size_t limit = 20;
  long service = -1;
  if (params && *params) {
    char* end = nullptr;
    limit = std::strtoul(params, &end, 10);
    if (end && *end == ',')
      service = std::strtol(end + 1, nullptr, 10);
  }
  if (limit > max_rows)
    limit = max_rows;
  std::vector<flow_row> rows;
  {
    std::lock_guard<std::mutex> g(g_mu);
    for (pipeline* p : g_pipelines)
      if (rows.size() < limit)
        p->list_flows(rows, limit, int32_t(service), telemetry_reader_id);
  }
  // Telemetry containers are flat arrays of scalars: one string array per
  // flow, keyed by its index, with the column names under "fields".
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_int(d, "count", int(rows.size()));
  static const char* fields[] = {"client",  "client_port",  "vip",   "vip_port", "proto",
                                 "service", "backend_slot", "state", "idle_ms",  "worker"};
  rte_tel_data* names = rte_tel_data_alloc();
  if (!names)
    return -1;
  rte_tel_data_start_array(names, RTE_TEL_STRING_VAL);
  for (const char* f : fields)
    rte_tel_data_add_array_string(names, f);
  rte_tel_data_add_dict_container(d, "fields", names, 0);
  for (size_t i = 0; i < rows.size(); ++i) {
    const flow_row& r = rows[i];
    rte_tel_data* row = rte_tel_data_alloc();
    if (!row)
      break;
    rte_tel_data_start_array(row, RTE_TEL_STRING_VAL);
    const std::string vals[] = {format_ip(r.client),       std::to_string(r.client_port),
                                format_ip(r.vip),          std::to_string(r.vip_port),
                                std::to_string(r.proto),   std::to_string(r.service),
                                std::to_string(r.backend), state_name(r.state),
                                std::to_string(r.idle_ms), std::to_string(r.worker)};
    for (const std::string& v : vals)
      rte_tel_data_add_array_string(row, v.c_str());
    rte_tel_data_add_dict_container(d, std::to_string(i).c_str(), row, 0);
  }
  return 0;
}

int workers_cmd(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_array(d, RTE_TEL_U64_VAL);
  std::lock_guard<std::mutex> g(g_mu);
  for (pipeline* p : g_pipelines)
    rte_tel_data_add_array_u64(d, p->flows_active());
  return 0;
}

} // namespace

void register_flow_telemetry(const std::vector<pipeline*>& pipelines) {
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_pipelines = pipelines;
  }
  rte_telemetry_register_cmd("/sluice/conns", conns_cmd,
                             "Tracked flows. Parameters: LIMIT[,SERVICE_INDEX] (LIMIT <= 100)");
  rte_telemetry_register_cmd("/sluice/workers", workers_cmd,
                             "Active flows per worker. Takes no parameters");
}

void unregister_flow_telemetry() {
  // DPDK cannot unregister a command: leave it answering with no pipelines.
  std::lock_guard<std::mutex> g(g_mu);
  g_pipelines.clear();
}

} // namespace sluice::dp
