#include "config_model.h"

#include <fmt/format.h>

#include "ip_addr.h"
#include "mode_names.h"

namespace sluice::cp {

const named_service* cp_config::find(std::string_view name) const {
  for (const auto& s : services)
    if (s.name == name)
      return &s;
  return nullptr;
}

named_service* cp_config::find(std::string_view name) {
  for (auto& s : services)
    if (s.name == name)
      return &s;
  return nullptr;
}

std::vector<service_config> cp_config::table_input() const {
  std::vector<service_config> out;
  out.reserve(services.size());
  for (const auto& s : services) {
    out.push_back(s.cfg);
    out.back().maglev_size = limits.maglev_size;
  }
  return out;
}

std::string_view mode_name(abi::fwd_mode m) {
  return fwd_mode_name(m);
}

std::optional<abi::fwd_mode> parse_mode(std::string_view s) {
  return fwd_mode_from_name(s);
}

std::string_view announce_name(announce_policy a) {
  switch (a) {
  case announce_policy::always:
    return "always";
  case announce_policy::never:
    return "never";
  case announce_policy::quorum:
    break;
  }
  return "quorum";
}

std::optional<announce_policy> parse_announce(std::string_view s) {
  for (auto a : {announce_policy::quorum, announce_policy::always, announce_policy::never})
    if (s == announce_name(a))
      return a;
  return std::nullopt;
}

std::string_view state_name(abi::backend_state s) {
  switch (s) {
  case abi::backend_state::up:
    return "up";
  case abi::backend_state::down:
    return "down";
  case abi::backend_state::draining:
    return "draining";
  case abi::backend_state::disabled:
    return "disabled";
  }
  return "?";
}

std::optional<abi::backend_state> parse_state(std::string_view s) {
  for (auto v : {abi::backend_state::up, abi::backend_state::down, abi::backend_state::draining,
                 abi::backend_state::disabled})
    if (state_name(v) == s)
      return v;
  return std::nullopt;
}

std::string_view proto_name(uint8_t proto) {
  return proto == 17 ? "udp" : proto == 6 ? "tcp" : "?";
}

std::optional<uint8_t> parse_proto(std::string_view s) {
  if (s == "tcp")
    return uint8_t(6);
  if (s == "udp")
    return uint8_t(17);
  return std::nullopt;
}

bool is_prime(uint64_t n) {
  if (n < 2)
    return false;
  for (uint64_t d = 2; d * d <= n; ++d)
    if (n % d == 0)
      return false;
  return true;
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64)
    return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.'))
      return false;
  return true;
}

std::string format_endpoint(const ip_addr& a, uint16_t port) {
  // fmt rather than operator+: GCC 12 -O3 reports a false -Wrestrict on the latter.
  if (a.is_v4())
    return fmt::format("{}:{}", format_ip(a), port);
  return fmt::format("[{}]:{}", format_ip(a), port);
}

} // namespace sluice::cp
