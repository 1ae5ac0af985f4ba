#include "config_validate.h"

#include <fmt/format.h>
#include <map>
#include <set>

#include "config_decode.h"
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

// " at line N" for a field path whose line is known, else "".
std::string at_line(const validate_hints& h, const std::string& path) {
  const int line = h.lines ? line_of(*h.lines, path) : 0;
  return line > 0 ? fmt::format(" at line {}", line) : std::string();
}

void check_service(const named_service& s, const std::string& p, const abi::capacities& caps,
                   const validate_hints& h, std::vector<issue>& out) {
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
    if (!fresh) {
      const std::string first = at_line(h, fmt::format("{}.backends[{}]", p, it->second));
      out.push_back(
          {bp, fmt::format("duplicate backend {} (listed {})", format_endpoint(b.addr, port),
                           first.empty() ? "twice" : "first" + first)});
    }
  }
}

} // namespace

std::vector<issue> validate_config(const cp_config& c, const abi::capacities& caps,
                                   const validate_hints& hints) {
  std::vector<issue> out;
  if (!valid_name(c.instance))
    out.push_back({"instance", fmt::format("must be 1..64 characters of [A-Za-z0-9_.-], got '{}'",
                                           c.instance)});
  // Every service's table is built with limits.maglev_size: when that is
  // wrong, each per-service probe below would only repeat it.
  const bool maglev_ok = is_prime(c.limits.maglev_size) && c.limits.maglev_size >= 7 &&
                         c.limits.maglev_size <= caps.lookup_entries;
  if (!maglev_ok)
    out.push_back({"limits.maglev_size", fmt::format("must be a prime in 7..{}, got {}",
                                                     caps.lookup_entries, c.limits.maglev_size)});
  if (c.limits.flow_table_size == 0)
    out.push_back({"limits.flow_table_size", "must be at least 1, got 0"});
  if (c.services.size() > caps.max_services)
    out.push_back({"services", fmt::format("at most {} services, got {}", caps.max_services,
                                           c.services.size())});
  const size_t global_issues = out.size();
  std::map<std::string, size_t> names;
  std::map<service_key, size_t> keys;
  std::set<size_t> faulty = hints.undecoded;
  for (size_t i = 0; i < c.services.size(); ++i) {
    const auto& s = c.services[i];
    const std::string p = fmt::format("services[{}]", i);
    const size_t before = out.size();
    // A name that decoded is worth checking for duplicates even when other
    // fields of its service did not.
    if (!s.name.empty())
      if (auto [it, fresh] = names.emplace(s.name, i); !fresh) {
        const auto& twin = c.services[it->second];
        out.push_back(
            {p + ".name",
             fmt::format("duplicate service name '{}' (also {} {}{})", s.name,
                         proto_name(twin.cfg.proto), format_endpoint(twin.cfg.vip, twin.cfg.port),
                         at_line(hints, fmt::format("services[{}]", it->second)))});
      }
    if (hints.undecoded.count(i))
      continue;
    check_service(s, p, caps, hints, out);
    if (auto [it, fresh] = keys.emplace(key_of(s.cfg), i); !fresh)
      out.push_back(
          {p, fmt::format("duplicate service {} {} (also service '{}'{})", proto_name(s.cfg.proto),
                          format_endpoint(s.cfg.vip, s.cfg.port), c.services[it->second].name,
                          at_line(hints, fmt::format("services[{}]", it->second)))});
    if (out.size() != before)
      faulty.insert(i);
  }
  // What only the builder knows: first per service (every service whose
  // fields are sound), so the message names the service (and its line),
  // then the whole set (capacities) once everything else is clean.
  const auto input = c.table_input();
  for (size_t i = 0; i < input.size(); ++i) {
    if (faulty.count(i) || !maglev_ok)
      continue;
    table_builder probe(caps);
    if (auto r = probe.validate({input[i]}); !r)
      out.push_back({fmt::format("services[{}]", i), r.error_message()});
  }
  if (out.empty() && faulty.empty() && global_issues == 0) {
    table_builder probe(caps);
    if (auto r = probe.validate(input); !r)
      out.push_back({"services", r.error_message()});
  }
  return out;
}

} // namespace sluice::cp
