#include "config_validate.h"

#include <fmt/format.h>
#include <map>

#include "table_builder.h"

namespace sluice::cp {

namespace {

bool family_rule_ok(abi::fwd_mode m, const ip_addr& vip, const ip_addr& backend) {
  // NAT modes and dsr-l2 rewrite or keep the IP header of one family; the
  // tunnelling modes carry either family inside either.
  if (m == abi::fwd_mode::dsr_ipip || m == abi::fwd_mode::dsr_gue)
    return true;
  return vip.family() == backend.family();
}

void check_service(const named_service& s, const std::string& p, const abi::capacities& caps,
                   std::vector<issue>& out) {
  if (!valid_name(s.name))
    out.push_back(
        {p + ".name", fmt::format("must be 1..64 characters of [A-Za-z0-9_.-], got '{}'", s.name)});
  if (s.cfg.port == 0)
    out.push_back({p + ".port", "must be 1..65535, got 0"});
  if (s.cfg.mode == abi::fwd_mode::dsr_gue && s.cfg.gue_port == 0)
    out.push_back({p + ".gue_port", "must be 1..65535 for mode dsr-gue, got 0"});
  if (s.quorum == 0 || s.quorum > caps.max_backends)
    out.push_back(
        {p + ".quorum", fmt::format("must be 1..{}, got {}", caps.max_backends, s.quorum)});
  for (const auto& tf : flow_timeout_fields)
    if (uint32_t v = s.cfg.timeouts.*tf.member; v == 0 || v > max_flow_timeout_s)
      out.push_back({fmt::format("{}.timeouts.{}", p, tf.name),
                     fmt::format("must be 1..{} seconds, got {}", max_flow_timeout_s, v)});
  std::map<std::pair<ip_addr, uint16_t>, size_t> seen;
  for (size_t j = 0; j < s.cfg.backends.size(); ++j) {
    const auto& b = s.cfg.backends[j];
    const std::string bp = fmt::format("{}.backends[{}]", p, j);
    if (b.addr.is_unspecified())
      out.push_back({bp + ".address", "must not be the unspecified address"});
    if (!family_rule_ok(s.cfg.mode, s.cfg.vip, b.addr))
      out.push_back({bp + ".address", fmt::format("must be of the VIP's family in mode {}, got {}",
                                                  mode_name(s.cfg.mode), format_ip(b.addr))});
    uint16_t port = b.port ? b.port : s.cfg.port;
    auto [it, fresh] = seen.emplace(std::pair{b.addr, port}, j);
    if (!fresh)
      out.push_back({bp, fmt::format("duplicate backend {} (also {}.backends[{}])",
                                     format_endpoint(b.addr, port), p, it->second)});
  }
}

} // namespace

std::vector<issue> validate_config(const cp_config& c, const abi::capacities& caps) {
  std::vector<issue> out;
  if (!valid_name(c.instance))
    out.push_back({"instance", fmt::format("must be 1..64 characters of [A-Za-z0-9_.-], got '{}'",
                                           c.instance)});
  if (!is_prime(c.limits.maglev_size) || c.limits.maglev_size < 7 ||
      c.limits.maglev_size > caps.lookup_entries)
    out.push_back({"limits.maglev_size", fmt::format("must be a prime in 7..{}, got {}",
                                                     caps.lookup_entries, c.limits.maglev_size)});
  if (c.limits.flow_table_size == 0)
    out.push_back({"limits.flow_table_size", "must be at least 1, got 0"});
  if (c.services.size() > caps.max_services)
    out.push_back({"services", fmt::format("at most {} services, got {}", caps.max_services,
                                           c.services.size())});
  std::map<std::string, size_t> names;
  std::map<service_key, size_t> keys;
  for (size_t i = 0; i < c.services.size(); ++i) {
    const auto& s = c.services[i];
    const std::string p = fmt::format("services[{}]", i);
    check_service(s, p, caps, out);
    if (auto [it, fresh] = names.emplace(s.name, i); !fresh)
      out.push_back({p + ".name", fmt::format("duplicate service name '{}' (also services[{}])",
                                              s.name, it->second)});
    if (auto [it, fresh] = keys.emplace(key_of(s.cfg), i); !fresh)
      out.push_back(
          {p, fmt::format("duplicate service {} {} (also services[{}])", proto_name(s.cfg.proto),
                          format_endpoint(s.cfg.vip, s.cfg.port), it->second)});
  }
  if (out.empty()) {
    // What only the builder knows: first per service, so the message names
    // the service's path (and line), then the whole set (capacities).
    const auto input = c.table_input();
    for (size_t i = 0; i < input.size(); ++i) {
      table_builder probe(caps);
      if (auto r = probe.validate({input[i]}); !r)
        out.push_back({fmt::format("services[{}]", i), r.error_message()});
    }
    table_builder probe(caps);
    if (auto r = probe.validate(input); out.empty() && !r)
      out.push_back({"services", r.error_message()});
  }
  return out;
}

} // namespace sluice::cp
