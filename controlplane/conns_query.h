// The API's `conns` command: one page of the dataplane's tracked flows, with
// names instead of indices. Filters (service name, backend ADDR[:PORT],
// client prefix, flow state) are translated to the dataplane's indices and
// slots and applied there, so only matching flows cross the telemetry socket;
// the page's `cursor` resumes where the previous one stopped, so a client
// pages through any number of flows with bounded answers (the dataplane
// replies in pages of at most flow_page_max rows; one API page gathers up to
// `limit` rows from several of them). Flows a page was built from may change
// under it: a flow that starts or ends while paging may be listed or not, but
// none is listed twice.
#pragma once

#include <nlohmann/json.hpp>

#include "result.h"

namespace sluice {
class publisher;
class shm_region;
} // namespace sluice

namespace sluice::cp {

struct cp_config;

struct conns_request {
  std::string service; // name, empty = all
  std::string backend; // ADDR or ADDR:PORT ([v6]:PORT), empty = all
  std::string client;  // ADDR or PREFIX, empty = all
  std::string state;   // a name of flow_states.h, empty = all
  uint32_t limit = 1000;
  std::string cursor; // "" = the start; else the previous page's `next`
};

inline constexpr uint32_t conns_page_max = 10000;

// Reads `req` (the API request object) into a conns_request; errors name the
// field.
result<conns_request> parse_conns_request(const nlohmann::json& req);

// {"ok": true, "count": N, "flows": [...], "done": bool, "next": CURSOR}.
result<nlohmann::json> query_conns(const conns_request& req, const cp_config& config,
                                   const shm_region& region, const publisher& pub,
                                   const std::string& shm_path);

} // namespace sluice::cp
