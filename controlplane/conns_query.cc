#include "conns_query.h"

#include <chrono>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <sstream>

#include "config_model.h"
#include "dataplane_telemetry.h"
#include "flow_states.h"
#include "ip_addr.h"
#include "publisher.h"
#include "shm_region.h"
#include "table_builder.h"

namespace sluice::cp {

namespace {

using json = nlohmann::json;

// Matches flow_page_max in dataplane/flow_telemetry.h (the dataplane caps a
// larger request anyway).
constexpr uint32_t dataplane_page = 128;

std::string endpoint(const ip_addr& a, uint16_t port) {
  return a.is_v4() ? fmt::format("{}:{}", format_ip(a), port)
                   : fmt::format("[{}]:{}", format_ip(a), port);
}

// "ADDR", "ADDR:PORT", "[V6]:PORT" or a bare v6 address.
result<std::pair<ip_addr, int>> parse_backend(const std::string& t) {
  if (auto a = parse_ip(t))
    return std::pair{*a, -1};
  std::string addr = t, port;
  if (t.size() > 2 && t[0] == '[') {
    const auto close = t.find("]:");
    if (close == std::string::npos)
      return make_error(fmt::format("backend: expected ADDR or ADDR:PORT, got '{}'", t));
    addr = t.substr(1, close - 1);
    port = t.substr(close + 2);
  } else if (const auto colon = t.rfind(':'); colon != std::string::npos) {
    addr = t.substr(0, colon);
    port = t.substr(colon + 1);
  }
  auto a = parse_ip(addr);
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (!a || port.empty() || *end != 0 || p < 1 || p > 65535)
    return make_error(fmt::format("backend: expected ADDR or ADDR:PORT, got '{}'", t));
  return std::pair{*a, int(p)};
}

} // namespace

result<conns_request> parse_conns_request(const json& req) {
  conns_request r;
  for (auto [key, out] : {std::pair{"service", &r.service}, std::pair{"backend", &r.backend},
                          std::pair{"client", &r.client}, std::pair{"state", &r.state},
                          std::pair{"cursor", &r.cursor}}) {
    if (!req.contains(key))
      continue;
    if (!req.at(key).is_string())
      return make_error(fmt::format("field '{}' must be a string", key));
    *out = req.at(key).get<std::string>();
  }
  if (req.contains("limit")) {
    const auto& l = req.at("limit");
    if (!l.is_number_integer() || l.get<int64_t>() < 1 || l.get<int64_t>() > conns_page_max)
      return make_error(fmt::format("limit: must be 1..{}", conns_page_max));
    r.limit = uint32_t(l.get<int64_t>());
  }
  if (!r.state.empty()) {
    bool known = false;
    std::string all;
    for (std::string_view s : flow_state_names) {
      known |= r.state == s;
      all += fmt::format("{}{}", all.empty() ? "" : ", ", s);
    }
    if (!known)
      return make_error(fmt::format("state: must be one of {}; got '{}'", all, r.state));
  }
  if (!r.client.empty() && !parse_prefix(r.client) && !parse_ip(r.client))
    return make_error(
        fmt::format("client: expected an address or a prefix (ADDR/LEN), got '{}'", r.client));
  if (!r.backend.empty())
    if (auto b = parse_backend(r.backend); !b)
      return b.err();
  if (!r.cursor.empty() && r.cursor.find_first_not_of("0123456789") != std::string::npos)
    return make_error(
        fmt::format("cursor: expected the `next` of a previous answer, got '{}'", r.cursor));
  return r;
}

result<json> query_conns(const conns_request& req, const cp_config& config,
                         const shm_region& region, const publisher& pub,
                         const std::string& shm_path) {
  const table_view v = current_view(region);
  if (!v.hdr)
    return make_error("no tables published yet");
  // Names of the published services, by index.
  std::map<uint32_t, std::string> svc_names;
  for (const auto& s : config.services)
    if (auto i = pub.builder().service_index(key_of(s.cfg)))
      svc_names[*i] = s.name;
  int64_t service_index = -1;
  if (!req.service.empty()) {
    const auto* s = config.find(req.service);
    if (!s)
      return make_error(fmt::format("service '{}' does not exist", req.service));
    auto idx = pub.builder().service_index(key_of(s->cfg));
    if (!idx)
      return make_error(fmt::format("service '{}' is not published yet", req.service));
    service_index = *idx;
  }
  auto slot_endpoint = [&](uint32_t slot) -> std::string {
    if (slot >= v.hdr->backend_limit || !(v.backends[slot].flags & abi::backend_in_use))
      return "?";
    ip_addr a;
    std::memcpy(a.bytes.data(), v.backends[slot].addr, 16);
    uint16_t port = v.backends[slot].port;
    const uint32_t svc = v.backends[slot].service;
    if (port == 0 && svc < v.hdr->service_limit)
      port = v.services[svc].port;
    return endpoint(a, port);
  };
  // A backend filter becomes a slot filter when it names one slot; when the
  // address serves several services (several slots), the rows are filtered
  // here instead.
  std::vector<uint32_t> slots;
  if (!req.backend.empty()) {
    auto b = parse_backend(req.backend).value();
    for (uint32_t slot = 0; slot < v.hdr->backend_limit; ++slot) {
      const auto& e = v.backends[slot];
      if (!(e.flags & abi::backend_in_use) || std::memcmp(e.addr, b.first.bytes.data(), 16) != 0)
        continue;
      if (service_index >= 0 && e.service != service_index)
        continue;
      if (b.second >= 0 && slot_endpoint(slot) != endpoint(b.first, uint16_t(b.second)))
        continue;
      slots.push_back(slot);
    }
    if (slots.empty())
      return json{{"ok", true}, {"count", 0}, {"flows", json::array()}, {"done", true}};
  }
  std::string filters;
  if (service_index >= 0)
    filters += fmt::format(",service={}", service_index);
  if (slots.size() == 1)
    filters += fmt::format(",backend={}", slots[0]);
  if (!req.state.empty())
    filters += ",state=" + req.state;
  if (!req.client.empty())
    filters += ",client=" + req.client;

  uint64_t cursor = req.cursor.empty() ? 0 : std::stoull(req.cursor);
  bool done = false;
  json flows = json::array();
  while (!done && flows.size() < req.limit) {
    const uint32_t want = std::min<uint32_t>(dataplane_page, req.limit - uint32_t(flows.size()));
    auto r = query_dataplane_telemetry(shm_path,
                                       fmt::format("/sluice/conns,{},{}{}", cursor, want, filters),
                                       std::chrono::milliseconds(2000));
    if (!r)
      return r.err();
    const json& page = r.value();
    if (!page.is_object() || !page.contains("rows"))
      return make_error("the dataplane refused the flow query (an older sluice-dataplane?)");
    std::vector<std::string> fields;
    {
      std::istringstream in(page.value("fields", std::string()));
      for (std::string f; in >> f;)
        fields.push_back(f);
    }
    for (const auto& row_text : page["rows"]) {
      std::istringstream in(row_text.get<std::string>());
      std::map<std::string, std::string> row;
      for (const auto& f : fields)
        in >> row[f];
      const uint32_t slot = uint32_t(std::stoul(row["backend_slot"]));
      const uint32_t svc = uint32_t(std::stoul(row["service"]));
      if (slots.size() > 1 && std::find(slots.begin(), slots.end(), slot) == slots.end())
        continue;
      std::string vip = "?", proto = "?";
      if (svc < v.hdr->service_limit) {
        ip_addr a;
        std::memcpy(a.bytes.data(), v.services[svc].vip, 16);
        vip = endpoint(a, v.services[svc].port);
        proto = v.services[svc].proto == 17 ? "udp" : "tcp";
      }
      const auto client = parse_ip(row["client"]);
      flows.push_back(
          {{"client",
            client ? endpoint(*client, uint16_t(std::stoul(row["client_port"]))) : row["client"]},
           {"vip", vip},
           {"proto", proto},
           {"service", svc_names.count(svc) ? svc_names[svc] : std::to_string(svc)},
           {"backend", slot_endpoint(slot)},
           {"state", row["state"]},
           {"idle_ms", std::stoull(row["idle_ms"])},
           {"worker", std::stoul(row["worker"])}});
    }
    done = page.value("done", 0) == 1;
    cursor = page.value("next", uint64_t(0));
  }
  json a = {{"ok", true}, {"count", flows.size()}, {"flows", flows}, {"done", done}};
  if (!done)
    a["next"] = std::to_string(cursor);
  return a;
}

} // namespace sluice::cp
