#include "health_config.h"

#include <fmt/format.h>

namespace sluice::cp {

std::string_view check_kind_name(check_kind k) {
  switch (k) {
  case check_kind::none:
    return "none";
  case check_kind::tcp:
    return "tcp";
  case check_kind::http:
    return "http";
  case check_kind::udp:
    return "udp";
  }
  return "?";
}

std::optional<check_kind> parse_check_kind(std::string_view s) {
  for (auto k : {check_kind::none, check_kind::tcp, check_kind::http, check_kind::udp})
    if (check_kind_name(k) == s)
      return k;
  return std::nullopt;
}

std::string describe(const health_config& h) {
  if (h.kind == check_kind::none)
    return "none";
  std::string what(check_kind_name(h.kind));
  if (h.kind == check_kind::http)
    what += fmt::format(" {} {}-{}", h.path, h.status_min, h.status_max);
  return fmt::format("{} every {}ms timeout {}ms rise {} fall {}", what, h.interval_ms,
                     h.timeout_ms, h.rise, h.fall);
}

} // namespace sluice::cp
