#include "flow_telemetry.h"

#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <mutex>
#include <string>
#include <string_view>

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
// A cursor is the worker index above the table position.
constexpr unsigned cursor_worker_shift = 48;
constexpr uint64_t cursor_pos_mask = (1ull << cursor_worker_shift) - 1;

std::string state_name(uint8_t s) {
  return std::string(flow_state_name(s));
}

bool parse_u64(std::string_view t, uint64_t& out) {
  if (t.empty())
    return false;
  std::string s(t);
  char* end = nullptr;
  out = std::strtoull(s.c_str(), &end, 10);
  return end && *end == 0;
}

// "CURSOR,LIMIT[,KEY=VALUE...]"; false on anything malformed.
bool parse_params(const char* params, uint64_t& cursor, size_t& limit, flow_filter& f) {
  if (!params)
    return false;
  std::string_view p(params);
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t comma = p.find(',', start);
    parts.push_back(p.substr(start, comma == std::string_view::npos ? comma : comma - start));
    if (comma == std::string_view::npos)
      break;
    start = comma + 1;
  }
  uint64_t lim = 0;
  if (parts.size() < 2 || !parse_u64(parts[0], cursor) || !parse_u64(parts[1], lim) || lim == 0)
    return false;
  limit = lim < flow_page_max ? size_t(lim) : flow_page_max;
  for (size_t i = 2; i < parts.size(); ++i) {
    const auto eq = parts[i].find('=');
    if (eq == std::string_view::npos)
      return false;
    const auto key = parts[i].substr(0, eq), val = parts[i].substr(eq + 1);
    uint64_t n = 0;
    if (key == "service" && parse_u64(val, n) && n <= 0xffff) {
      f.service = int32_t(n);
    } else if (key == "backend" && parse_u64(val, n) && n <= 0xffffffffull) {
      f.backend = int64_t(n);
    } else if (key == "state") {
      f.state = -2;
      for (int16_t s = 0; s < int16_t(flow_state_count); ++s)
        if (val == flow_state_names[size_t(s)])
          f.state = s;
      if (f.state == -2)
        return false;
    } else if (key == "client") {
      f.client = parse_prefix(val);
      if (!f.client) {
        auto a = parse_ip(val);
        if (!a)
          return false;
        f.client = ip_prefix{*a, uint8_t(a->is_v4() ? 32 : 128)};
      }
    } else {
      return false;
    }
  }
  return true;
}

int conns_cmd(const char*, const char* params, rte_tel_data* d) {
  uint64_t cursor = 0;
  size_t limit = 0;
  flow_filter f;
  if (!parse_params(params, cursor, limit, f))
    return -1; // DPDK answers null: the control plane reports a bad request
  std::vector<flow_row> rows;
  uint64_t next = flow_cursor_end;
  {
    std::lock_guard<std::mutex> g(g_mu);
    for (uint64_t w = cursor >> cursor_worker_shift; w < g_pipelines.size(); ++w) {
      const uint64_t pos = w == (cursor >> cursor_worker_shift) ? cursor & cursor_pos_mask : 0;
      const uint64_t r = g_pipelines[w]->list_flows(rows, limit, f, pos, telemetry_reader_id);
      if (r != flow_cursor_end) {
        next = (w << cursor_worker_shift) | r;
        break;
      }
      if (rows.size() >= limit) {
        next = (w + 1) << cursor_worker_shift;
        if (w + 1 == g_pipelines.size())
          next = flow_cursor_end;
        break;
      }
    }
  }
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "count", rows.size());
  rte_tel_data_add_dict_u64(d, "done", next == flow_cursor_end ? 1 : 0);
  rte_tel_data_add_dict_u64(d, "next", next == flow_cursor_end ? 0 : next);
  rte_tel_data_add_dict_string(d, "fields",
                               "client client_port service backend_slot state idle_ms worker");
  rte_tel_data* list = rte_tel_data_alloc();
  if (!list)
    return -1;
  rte_tel_data_start_array(list, RTE_TEL_STRING_VAL);
  for (const flow_row& r : rows) {
    const std::string row =
        fmt::format("{} {} {} {} {} {} {}", format_ip(r.client), r.client_port, r.service,
                    r.backend, state_name(r.state), r.idle_ms, r.worker);
    rte_tel_data_add_array_string(list, row.c_str());
  }
  rte_tel_data_add_dict_container(d, "rows", list, 0);
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
                             "Tracked flows, one page. Parameters: CURSOR,LIMIT[,service=INDEX]"
                             "[,backend=SLOT][,state=NAME][,client=PREFIX]");
  rte_telemetry_register_cmd("/sluice/workers", workers_cmd,
                             "Active flows per worker. Takes no parameters");
}

void unregister_flow_telemetry() {
  // DPDK cannot unregister a command: leave it answering with no pipelines.
  std::lock_guard<std::mutex> g(g_mu);
  g_pipelines.clear();
}

} // namespace sluice::dp
